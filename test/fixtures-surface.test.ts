/**
 * The fixtures' resources, resource templates, prompts, completions and subscriptions
 * (test/fixtures/catalog.ts), proven with the plain SDK clients, no pool, over stdio and Streamable
 * HTTP:
 * - "legacy": test/fixtures/server.ts (v1 SDK) with the v1 `@modelcontextprotocol/sdk` Client;
 * - "modern": test/fixtures/modern-server.ts with the v2 `@modelcontextprotocol/client` Client
 *   negotiating automatically (2026-07-28: list_changed and resource updates on `subscriptions/listen`);
 * - "legacy-serve": modern-server.ts with `--legacy serve` and a v2 Client pinned to the legacy era
 *   (the v2 server's `resources/subscribe` path).
 * Serial: every test spawns one or two server processes, and the machine has two cores.
 */
import test, { type ExecutionContext } from "ava";
import { rmSync } from "node:fs";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport as V1StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport as V1StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { Client as V2Client, StreamableHTTPClientTransport as V2StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport as V2StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import {
  BLOB_BASE64,
  BLOB_URI,
  COUNTER_URI,
  HELLO_TEXT,
  HELLO_URI,
  ITEMS_TEMPLATE,
  LISTED_TEMPLATES,
  listedPrompts,
  listedResources,
  MISSING_URI,
  SLOW_TEMPLATE,
  USERS_TEMPLATE,
} from "./fixtures/catalog.js";
import { createSession } from "./fixtures/tools.js";
import { readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, type FixtureEra, within } from "./helpers/fixtures.js";

const TRANSPORTS = ["stdio", "http"] as const;
type TransportKind = (typeof TRANSPORTS)[number];
const FLAVOURS = ["legacy", "modern", "legacy-serve"] as const;
type Flavour = (typeof FLAVOURS)[number];
type NotificationMethod = "notifications/resources/updated" | "notifications/resources/list_changed" | "notifications/prompts/list_changed";

/** The rejection of `promise` (bounded), or a failure if it resolves. */
async function rejection(what: string, promise: Promise<unknown>): Promise<{ code?: unknown; data?: unknown; message: string }> {
  const outcome = await within(10_000, what, promise.then(() => undefined, (error: unknown) => error as Error));
  if (!outcome) throw new Error(`${what}: resolved, expected a rejection`);
  return outcome as { code?: unknown; data?: unknown; message: string };
}

/** What both SDK clients offer with the same names and shapes (parameters as the MCP spec has them). */
/* eslint-disable @typescript-eslint/no-explicit-any */
interface SurfaceClient {
  listResources(params?: { cursor?: string }): Promise<any>;
  listResourceTemplates(params?: { cursor?: string }): Promise<any>;
  readResource(params: { uri: string }, options?: { timeout?: number; signal?: AbortSignal }): Promise<any>;
  listPrompts(params?: { cursor?: string }): Promise<any>;
  getPrompt(params: { name: string; arguments?: Record<string, string> }): Promise<any>;
  complete(params: any): Promise<any>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<any>;
  subscribeResource(params: { uri: string }): Promise<any>;
  unsubscribeResource(params: { uri: string }): Promise<any>;
  getServerCapabilities(): any;
  close(): Promise<void>;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

interface Connected {
  client: SurfaceClient;
  /** The FIXTURE_EVENTS file of the fixture. */
  events: string;
  /** Counts the notifications of `method` from now on. */
  count(method: NotificationMethod): () => number;
  /**
   * Asks for change notifications: 2026-07-28, one `subscriptions/listen` stream with `filter`;
   * legacy, `resources/subscribe` for each URI (list_changed needs nothing). Returns the undo.
   */
  watch(filter: { resourcesListChanged?: true; promptsListChanged?: true; resourceSubscriptions?: string[] }): Promise<() => Promise<void>>;
}

const V1_SCHEMAS = {
  "notifications/resources/updated": ResourceUpdatedNotificationSchema,
  "notifications/resources/list_changed": ResourceListChangedNotificationSchema,
  "notifications/prompts/list_changed": PromptListChangedNotificationSchema,
} as const;

/** Starts the fixture of `flavour` over `kind` and connects its client; everything is torn down by `t.teardown`. */
async function connect(t: ExecutionContext, flavour: Flavour, kind: TransportKind): Promise<Connected> {
  const events = tmpFile("fixtures-surface-events");
  t.teardown(() => rmSync(events, { force: true }));
  const env = { FIXTURE_EVENTS: events };
  const era: FixtureEra = flavour === "legacy" ? "legacy" : "modern";
  const args = flavour === "legacy-serve" ? ["--legacy", "serve"] : [];
  let url: URL | undefined;
  if (kind === "http") {
    const fixture = await startHttpFixture("http", args, env, era);
    t.teardown(() => fixture.close());
    url = new URL(fixture.url);
  }
  const stdio = () => {
    const config = stdioServer(args, env, era);
    return { command: config.command, args: config.args, env: { ...process.env, ...env } as Record<string, string>, stderr: "ignore" as const };
  };

  if (flavour === "legacy") {
    const client = new V1Client({ name: "fixtures-surface-test", version: "1.0.0" });
    t.teardown(() => within(10_000, "client.close", client.close()));
    await within(30_000, "connect", client.connect(url ? new V1StreamableHTTPClientTransport(url) : new V1StdioClientTransport(stdio())));
    const handlers = new Map<NotificationMethod, number>();
    return {
      client: client as unknown as SurfaceClient,
      events,
      count(method) {
        handlers.set(method, 0);
        client.setNotificationHandler(V1_SCHEMAS[method], () => void handlers.set(method, handlers.get(method)! + 1));
        return () => handlers.get(method)!;
      },
      watch: (filter) => legacyWatch(client as unknown as SurfaceClient, filter),
    };
  }

  const client = new V2Client(
    { name: "fixtures-surface-test", version: "1.0.0" },
    { versionNegotiation: { mode: flavour === "modern" ? "auto" : "legacy" } },
  );
  t.teardown(() => within(10_000, "client.close", client.close()));
  await within(30_000, "connect", client.connect(url ? new V2StreamableHTTPClientTransport(url) : new V2StdioClientTransport(stdio())));
  t.is(client.getProtocolEra(), flavour === "modern" ? "modern" : "legacy");
  const counts = new Map<NotificationMethod, number>();
  return {
    client: client as unknown as SurfaceClient,
    events,
    count(method) {
      counts.set(method, 0);
      client.setNotificationHandler(method, () => void counts.set(method, counts.get(method)! + 1));
      return () => counts.get(method)!;
    },
    async watch(filter) {
      if (flavour !== "modern") return legacyWatch(client as unknown as SurfaceClient, filter);
      const subscription = await within(10_000, "listen", client.listen(filter));
      t.teardown(() => within(10_000, "subscription.close", subscription.close()));
      t.deepEqual(subscription.honoredFilter, filter, "the server honours the whole filter");
      return () => within(10_000, "subscription.close", subscription.close());
    },
  };
}

async function legacyWatch(client: SurfaceClient, filter: { resourceSubscriptions?: string[] }): Promise<() => Promise<void>> {
  const uris = filter.resourceSubscriptions ?? [];
  for (const uri of uris) await within(10_000, "subscribeResource", client.subscribeResource({ uri }));
  return async () => {
    for (const uri of uris) await within(10_000, "unsubscribeResource", client.unsubscribeResource({ uri }));
  };
}

/** Every item of a paged list, walked by hand with the server's cursors (one request per page). */
async function walk<T>(what: string, page: (cursor: string | undefined) => Promise<{ nextCursor?: string } & Record<string, unknown>>, key: string): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const result = await within(10_000, `${what} page ${pages + 1}`, page(cursor));
    items.push(...(result[key] as T[]));
    cursor = result.nextCursor;
    pages++;
  } while (cursor !== undefined && pages < 100);
  return { items, pages };
}
/** The first page: the v2 client aggregates when asked without a cursor, so ask for offset 0 explicitly. */
const firstCursor = (cursor: string | undefined): string => cursor ?? "0";

const textOf = (result: { content?: unknown }): string => {
  const first = (result.content as Array<{ type: string; text?: string }> | undefined)?.[0];
  return first?.type === "text" ? (first.text ?? "") : "";
};
/** What a session with nothing added lists. */
const emptySession = () =>
  createSession({ forget: () => false, toolsChanged: async () => {}, resourcesChanged: async () => {}, promptsChanged: async () => {}, resourceUpdated: async () => {} });
/** Plain JSON copies (drops members set to undefined), to compare with what catalog.ts defines. */
const strip = (items: unknown[]): unknown[] => items.map((item) => JSON.parse(JSON.stringify(item)) as unknown);

for (const flavour of FLAVOURS) {
  for (const kind of TRANSPORTS) {
    const title = `${flavour} ${kind}`;

    test.serial(`${title}: the server declares resources (subscribe, listChanged), prompts (listChanged) and completions`, async (t) => {
      const { client } = await connect(t, flavour, kind);
      const capabilities = client.getServerCapabilities();
      t.deepEqual(capabilities.resources, { subscribe: true, listChanged: true });
      t.deepEqual(capabilities.prompts, { listChanged: true });
      t.deepEqual(capabilities.completions, {});
      t.deepEqual(capabilities.tools, { listChanged: true });
    });

    test.serial(`${title}: resources and templates list across pages as catalog.ts defines them`, async (t) => {
      const { client } = await connect(t, flavour, kind);
      const expected = listedResources(emptySession());
      const resources = await walk("resources/list", (cursor) => client.listResources({ cursor: firstCursor(cursor) }), "resources");
      t.deepEqual(strip(resources.items), expected);
      t.is(resources.pages, Math.ceil(expected.length / 8));
      t.true(resources.pages > 1, "the list pages at the default page size of 8");
      const second = await within(10_000, "resources/list page 2", client.listResources({ cursor: "8" }));
      t.deepEqual(second.resources.map((r: { uri: string }) => r.uri), expected.slice(8, 16).map((r) => r.uri));
      const templates = await walk("resources/templates/list", (cursor) => client.listResourceTemplates({ cursor: firstCursor(cursor) }), "resourceTemplates");
      t.deepEqual(strip(templates.items), LISTED_TEMPLATES);
      t.true(expected.some((r) => r.uri === COUNTER_URI));
      t.false(expected.some((r) => r.uri === MISSING_URI));
    });

    test.serial(`${title}: resources read as text and blob, templates read for any value, and a missing resource is resource-not-found`, async (t) => {
      const { client, events } = await connect(t, flavour, kind);
      t.deepEqual((await within(10_000, "read hello", client.readResource({ uri: HELLO_URI }))).contents, [{ uri: HELLO_URI, mimeType: "text/plain", text: HELLO_TEXT }]);
      t.deepEqual((await within(10_000, "read blob", client.readResource({ uri: BLOB_URI }))).contents, [{ uri: BLOB_URI, mimeType: "application/octet-stream", blob: BLOB_BASE64 }]);
      t.deepEqual((await within(10_000, "read counter", client.readResource({ uri: COUNTER_URI }))).contents, [{ uri: COUNTER_URI, mimeType: "text/plain", text: "0" }]);
      const item = ITEMS_TEMPLATE.replace("{id}", "x-99");
      t.deepEqual((await within(10_000, "read item", client.readResource({ uri: item }))).contents, [{ uri: item, mimeType: "text/plain", text: "x-99" }]);
      const profile = USERS_TEMPLATE.replace("{name}", "bob");
      const read = await within(10_000, "read profile", client.readResource({ uri: profile }));
      t.deepEqual(JSON.parse(read.contents[0].text), { name: "bob" });
      t.is(read.contents[0].mimeType, "application/json");

      const missing = await rejection("read missing", client.readResource({ uri: MISSING_URI }));
      // The v1 server sends the spec's -32002; the v2 SDK sends -32602 with data { uri } on both eras.
      t.is(missing.code, flavour === "legacy" ? -32002 : -32602);
      t.deepEqual(missing.data, { uri: MISSING_URI });
      t.regex(missing.message, /Resource not found: fixture:\/\/missing/);
      t.deepEqual(
        readEvents(events).filter((e) => e.event === "read").map((e) => e.uri),
        [HELLO_URI, BLOB_URI, COUNTER_URI, item, profile, MISSING_URI],
      );
    });

    test.serial(`${title}: prompts list across pages, get with their arguments, and fail clearly`, async (t) => {
      const { client } = await connect(t, flavour, kind);
      const expected = listedPrompts(emptySession());
      const prompts = await walk("prompts/list", (cursor) => client.listPrompts({ cursor: firstCursor(cursor) }), "prompts");
      t.deepEqual(strip(prompts.items), expected);
      t.true(prompts.pages > 1);
      const greet = await within(10_000, "greet", client.getPrompt({ name: "greet", arguments: { name: "Ada" } }));
      t.deepEqual(greet.messages, [{ role: "user", content: { type: "text", text: "Hello, Ada!" } }]);
      t.is(greet.description, "A greeting.");
      const brief = await within(10_000, "summarize", client.getPrompt({ name: "summarize", arguments: { text: "long text" } }));
      t.is(brief.messages[0].content.text, "Summarize (brief): long text");
      const bullets = await within(10_000, "summarize bullets", client.getPrompt({ name: "summarize", arguments: { text: "t", style: "bullets" } }));
      t.is(bullets.messages[0].content.text, "Summarize (bullets): t");

      t.like(await rejection("greet without name", client.getPrompt({ name: "greet", arguments: {} })), { code: -32602 });
      t.like(await rejection("unknown prompt", client.getPrompt({ name: "nope" })), { code: -32602 });
      const broken = await rejection("broken", client.getPrompt({ name: "broken" }));
      t.is(broken.code, -32603);
      t.regex(broken.message, /broken: prompt failed on request/);
    });

    test.serial(`${title}: completion suggests prompt arguments and template variables by prefix`, async (t) => {
      const { client } = await connect(t, flavour, kind);
      const complete = async (ref: unknown, name: string, value: string) =>
        (await within(10_000, "complete", client.complete({ ref, argument: { name, value } }))).completion;
      t.deepEqual(await complete({ type: "ref/prompt", name: "greet" }, "name", "al"), { values: ["alice", "albert", "alfred"], total: 3, hasMore: false });
      t.deepEqual((await complete({ type: "ref/prompt", name: "summarize" }, "style", "b")).values, ["brief", "bullets"]);
      t.deepEqual((await complete({ type: "ref/resource", uri: ITEMS_TEMPLATE }, "id", "12")).values, ["12", "123"]);
      t.deepEqual((await complete({ type: "ref/resource", uri: USERS_TEMPLATE }, "name", "car")).values, ["carol", "carlos"]);
      t.deepEqual((await complete({ type: "ref/prompt", name: "greet" }, "name", "zz")).values, []);
      t.like(await rejection("unknown prompt", client.complete({ ref: { type: "ref/prompt", name: "nope" }, argument: { name: "x", value: "" } })), { code: -32602 });
    });

    test.serial(`${title}: add_resource and add_prompt send list_changed, and the new entries are listed and usable`, async (t) => {
      const { client, count, watch } = await connect(t, flavour, kind);
      const resourcesChanged = count("notifications/resources/list_changed");
      const promptsChanged = count("notifications/prompts/list_changed");
      await watch({ resourcesListChanged: true, promptsListChanged: true });

      const uri = "fixture://dynamic/new.txt";
      t.is(textOf(await within(10_000, "add_resource", client.callTool({ name: "add_resource", arguments: { uri } }))), `added ${uri}`);
      await within(10_000, "resources list_changed", waitFor(() => resourcesChanged() === 1, 10_000, 10));
      const resources = await walk<{ uri: string }>("resources/list", (cursor) => client.listResources({ cursor: firstCursor(cursor) }), "resources");
      t.is(resources.items.at(-1)?.uri, uri);
      t.is(resources.items.length, listedResources(emptySession()).length + 1);
      t.deepEqual((await within(10_000, "read added", client.readResource({ uri }))).contents, [{ uri, mimeType: "text/plain", text: `added resource ${uri}` }]);

      t.is(textOf(await within(10_000, "add_prompt", client.callTool({ name: "add_prompt", arguments: { name: "dynamic" } }))), "added dynamic");
      await within(10_000, "prompts list_changed", waitFor(() => promptsChanged() === 1, 10_000, 10));
      const prompts = await walk<{ name: string }>("prompts/list", (cursor) => client.listPrompts({ cursor: firstCursor(cursor) }), "prompts");
      t.is(prompts.items.at(-1)?.name, "dynamic");
      t.is((await within(10_000, "get added", client.getPrompt({ name: "dynamic" }))).messages[0].content.text, "added prompt dynamic");
      t.is(resourcesChanged(), 1);
    });

    test.serial(`${title}: a subscriber gets resources/updated on bump_resource, and nothing once unsubscribed`, async (t) => {
      const { client, count, watch, events } = await connect(t, flavour, kind);
      const updated = count("notifications/resources/updated");
      const bump = async () => textOf(await within(10_000, "bump_resource", client.callTool({ name: "bump_resource", arguments: {} })));

      // Not subscribed: a bump tells no one.
      t.is(await bump(), "1");
      const unsubscribe = await watch({ resourceSubscriptions: [COUNTER_URI] });
      t.is(await bump(), "2");
      await within(10_000, "resources/updated", waitFor(() => updated() === 1, 10_000, 10));
      t.deepEqual((await within(10_000, "read counter", client.readResource({ uri: COUNTER_URI }))).contents[0].text, "2");

      await unsubscribe();
      t.is(await bump(), "3");
      // Nothing may follow: give a late notification time to arrive, after a round trip on the connection.
      await within(10_000, "echo", client.callTool({ name: "echo", arguments: { message: "after" } }));
      await new Promise((resolve) => setTimeout(resolve, 300));
      t.is(updated(), 1);
      t.is((await within(10_000, "read counter", client.readResource({ uri: COUNTER_URI }))).contents[0].text, "3");

      const recorded = readEvents(events).filter((e) => ["listen", "subscribe", "unsubscribe"].includes(e.event));
      if (flavour === "modern") {
        t.deepEqual(recorded.map(({ event, filter }) => ({ event, filter })), [{ event: "listen", filter: { resourceSubscriptions: [COUNTER_URI] } }]);
      } else {
        t.deepEqual(recorded.map(({ event, uri }) => ({ event, uri })), [{ event: "subscribe", uri: COUNTER_URI }, { event: "unsubscribe", uri: COUNTER_URI }]);
      }
    });

    test.serial(`${title}: a slow template read ends when the client aborts it, and the server records it cancelled`, async (t) => {
      const { client, events } = await connect(t, flavour, kind);
      const uri = SLOW_TEMPLATE.replace("{ms}", "20");
      t.deepEqual((await within(10_000, "quick read", client.readResource({ uri }))).contents, [{ uri, mimeType: "text/plain", text: "read after 20ms" }]);
      const controller = new AbortController();
      const read = client.readResource({ uri: SLOW_TEMPLATE.replace("{ms}", "30000") }, { signal: controller.signal });
      await within(10_000, "slow read reaches the server", waitFor(() => readEvents(events).filter((e) => e.event === "read").length === 2, 10_000, 10));
      controller.abort();
      await rejection("aborted read", read);
      await within(10_000, "cancelled event", waitFor(() => readEvents(events).some((e) => e.event === "cancelled" && e.tool === "read:slow"), 10_000, 10));
    });
  }
}

/**
 * The 2026-07-28 fixture (test/fixtures/modern-server.ts) proven with the SDK's v2 client directly,
 * no pool: over stdio and Streamable HTTP it negotiates 2026-07-28, lists every tool across pages,
 * runs tools, sends progress, records a cancelled call, delivers list_changed to a listen stream and
 * counts one server/discover per connect; `--legacy serve` also answers legacy clients,
 * `--legacy reject` turns them away clearly. Serial: every test spawns one or two server processes,
 * and the machine has two cores.
 */
import test, { type ExecutionContext } from "ava";
import { rmSync } from "node:fs";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { fixtureTools } from "./fixtures/tools.js";
import { FIXTURE_TOOL_COUNT, isAlive, readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, within } from "./helpers/fixtures.js";

const TRANSPORTS = ["stdio", "http"] as const;
type TransportKind = (typeof TRANSPORTS)[number];
type Negotiation = "auto" | "legacy";


interface Connected {
  client: Client;
  /** The FIXTURE_EVENTS file of the fixture (and, over stdio, of the client's probe sibling). */
  events: string;
  /** stdio: the pid of the session's server process. */
  pid: number | undefined;
}

interface ConnectOptions {
  legacy?: "serve" | "reject";
  negotiation?: Negotiation;
  headers?: Record<string, string>;
}

/**
 * Starts the modern fixture over `kind` (with `--legacy reject` unless told otherwise) and connects a
 * v2 Client; everything is torn down by `t.teardown`. Connect failures reject (the fixture stays
 * owned by the teardown).
 */
async function connect(t: ExecutionContext, kind: TransportKind, options: ConnectOptions = {}): Promise<Connected> {
  const { legacy = "reject", negotiation = "auto", headers } = options;
  const events = tmpFile("fixtures-modern-events");
  t.teardown(() => rmSync(events, { force: true }));
  const env = { FIXTURE_EVENTS: events };
  const client = new Client({ name: "fixtures-modern-test", version: "1.0.0" }, { versionNegotiation: { mode: negotiation } });
  t.teardown(() => within(10_000, "client.close", client.close()));
  if (kind === "stdio") {
    const config = stdioServer(["--legacy", legacy], env, "modern");
    const transport = new StdioClientTransport({ command: config.command, args: config.args, env: { ...process.env, ...env } as Record<string, string>, stderr: "ignore" });
    await within(30_000, "stdio connect", client.connect(transport));
    return { client, events, pid: transport.pid ?? undefined };
  }
  const fixture = await startHttpFixture("http", ["--legacy", legacy], env, "modern");
  t.teardown(() => fixture.close());
  const transport = new StreamableHTTPClientTransport(new URL(fixture.url), headers ? { requestInit: { headers } } : undefined);
  await within(30_000, "http connect", client.connect(transport));
  return { client, events, pid: fixture.pid };
}

const textOf = (result: { content?: unknown }): string => {
  const first = (result.content as Array<{ type: string; text?: string }> | undefined)?.[0];
  return first?.type === "text" ? (first.text ?? "") : "";
};
const count = (events: string, event: string) => readEvents(events).filter((e) => e.event === event).length;

for (const kind of TRANSPORTS) {
  test.serial(`${kind}: an auto-negotiating v2 client lands on 2026-07-28 with one server/discover and no initialize`, async (t) => {
    const { client, events } = await connect(t, kind);
    t.is(client.getProtocolEra(), "modern");
    t.is(client.getNegotiatedProtocolVersion(), "2026-07-28");
    t.is(client.getServerVersion()?.name, "fixture");
    t.is(client.getInstructions(), "Tools of the fixture fixture.");
    t.deepEqual(client.getServerCapabilities()?.tools, { listChanged: true });
    await within(10_000, "echo", client.callTool({ name: "echo", arguments: { message: "hi" } }));
    t.is(count(events, "discover"), 1);
    t.is(count(events, "initialize"), 0);
  });

  test.serial(`${kind}: listTools returns every tool, as tools.ts defines them, across pages of 8`, async (t) => {
    const { client } = await connect(t, kind);
    const { tools } = await within(10_000, "listTools", client.listTools());
    t.is(tools.length, FIXTURE_TOOL_COUNT);
    const expected = fixtureTools(12).map(({ run: _run, ...tool }) => tool);
    t.deepEqual(
      tools.map(({ name, description, inputSchema, annotations }) => ({ name, description, inputSchema, ...(annotations && { annotations }) })),
      expected,
    );
    // One page on its own: the server pages, the client's aggregate walked it.
    const page = await within(10_000, "listTools page", client.listTools({ cursor: "8" }));
    t.deepEqual(page.tools.map((tool) => tool.name), expected.slice(8, 16).map((tool) => tool.name));
    t.is(page.nextCursor, "16");
  });

  test.serial(`${kind}: tools answer as in the legacy fixture: echo, a JSON-RPC error, the request id, the pid`, async (t) => {
    const { client, pid } = await connect(t, kind);
    t.is(textOf(await within(10_000, "echo", client.callTool({ name: "echo", arguments: { message: "hello" } }))), "hello");
    const failed = await within(10_000, "fail", client.callTool({ name: "fail", arguments: { message: "no" } }));
    t.is(failed.isError, true);
    t.is(textOf(failed), "no");
    const error = await within(10_000, "rpc_error", client.callTool({ name: "rpc_error", arguments: { code: -32050 } }).then(() => undefined, (e: unknown) => e));
    t.like(error, { code: -32050, message: "rpc_error requested" });
    const unknown = await within(10_000, "unknown tool", client.callTool({ name: "nope", arguments: {} }).then(() => undefined, (e: unknown) => e));
    t.like(unknown, { code: -32602 });
    const first = JSON.parse(textOf(await within(10_000, "request_id", client.callTool({ name: "request_id", arguments: {} })))) as { id: unknown };
    const second = JSON.parse(textOf(await within(10_000, "request_id", client.callTool({ name: "request_id", arguments: {} })))) as { id: unknown };
    t.is(typeof first.id, "number");
    t.not(first.id, second.id);
    t.is(textOf(await within(10_000, "pid", client.callTool({ name: "pid", arguments: {} }))), String(pid));
  });

  test.serial(`${kind}: progress arrives on the call's token`, async (t) => {
    const { client } = await connect(t, kind);
    const seen: Array<{ progress: number; total?: number }> = [];
    const result = await within(10_000, "progress", client.callTool({ name: "progress", arguments: { steps: 3 } }, { onprogress: (p) => void seen.push(p) }));
    t.is(textOf(result), "progress done");
    t.deepEqual(seen.map(({ progress, total }) => ({ progress, total })), [1, 2, 3].map((progress) => ({ progress, total: 3 })));
  });

  test.serial(`${kind}: a slow call the client aborts is recorded "cancelled" by the server`, async (t) => {
    const { client, events } = await connect(t, kind);
    const controller = new AbortController();
    const call = client.callTool({ name: "slow", arguments: { ms: 30_000 } }, { signal: controller.signal });
    await within(10_000, "slow call reaches the server", waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "slow"), 10_000, 10));
    controller.abort();
    await t.throwsAsync(within(10_000, "aborted call", call));
    await within(10_000, "cancelled event", waitFor(() => readEvents(events).some((e) => e.event === "cancelled" && e.tool === "slow"), 10_000, 10));
    // The server goes on serving.
    t.is(textOf(await within(10_000, "echo", client.callTool({ name: "echo", arguments: { message: "after" } }))), "after");
  });

  test.serial(`${kind}: add_tool reaches a subscriptions/listen subscriber, and the new tool is listed`, async (t) => {
    const { client } = await connect(t, kind);
    let changes = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changes++;
    });
    const subscription = await within(10_000, "listen", client.listen({ toolsListChanged: true }));
    t.teardown(() => within(10_000, "subscription.close", subscription.close()));
    t.deepEqual(subscription.honoredFilter, { toolsListChanged: true });
    t.is(textOf(await within(10_000, "add_tool", client.callTool({ name: "add_tool", arguments: { name: "dynamic" } }))), "added dynamic");
    await within(10_000, "list_changed", waitFor(() => changes === 1, 10_000, 10));
    const { tools } = await within(10_000, "listTools", client.listTools());
    t.is(tools.length, FIXTURE_TOOL_COUNT + 1);
    t.is(tools.at(-1)?.name, "dynamic");
    t.is(textOf(await within(10_000, "dynamic", client.callTool({ name: "dynamic", arguments: {} }))), "dynamic called");
  });

  test.serial(`${kind}: crash ends the server process, and the call does not hang`, async (t) => {
    const { client, pid } = await connect(t, kind);
    t.truthy(pid);
    const outcome = await within(15_000, "crash", client.callTool({ name: "crash", arguments: { code: 7 } }, { timeout: 5_000 }).then(() => "answered", () => "rejected"));
    t.is(outcome, "rejected");
    await within(10_000, "server exit", waitFor(() => !isAlive(pid!), 10_000, 25));
  });

  test.serial(`${kind}: with --legacy serve a legacy client completes the initialize handshake and uses the same tools`, async (t) => {
    const { client, events } = await connect(t, kind, { legacy: "serve", negotiation: "legacy" });
    t.is(client.getProtocolEra(), "legacy");
    t.is(client.getNegotiatedProtocolVersion(), "2025-11-25");
    t.is(client.getServerVersion()?.name, "fixture");
    t.is(count(events, "initialize"), 1);
    t.is(count(events, "discover"), 0);
    t.is((await within(10_000, "listTools", client.listTools())).tools.length, FIXTURE_TOOL_COUNT);
    t.is(textOf(await within(10_000, "echo", client.callTool({ name: "echo", arguments: { message: "old" } }))), "old");
    // Legacy list_changed is an unsolicited notification, no listen stream.
    let changes = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => {
      changes++;
    });
    await within(10_000, "add_tool", client.callTool({ name: "add_tool", arguments: { name: "dynamic" } }));
    await within(10_000, "list_changed", waitFor(() => changes === 1, 10_000, 10));
  });

  test.serial(`${kind}: with --legacy serve an auto-negotiating client still lands on 2026-07-28`, async (t) => {
    const { client, events } = await connect(t, kind, { legacy: "serve" });
    t.is(client.getProtocolEra(), "modern");
    t.is(client.getNegotiatedProtocolVersion(), "2026-07-28");
    t.is(count(events, "discover"), 1);
    t.is(count(events, "initialize"), 0);
  });

  test.serial(`${kind}: with --legacy reject (the default) a legacy client fails with the unsupported-protocol-version error`, async (t) => {
    const error = await within(30_000, "legacy connect", connect(t, kind, { negotiation: "legacy" }).then(() => undefined, (e: unknown) => e));
    t.true(error instanceof Error, "connect rejects");
    t.regex((error as Error).message, /Unsupported protocol version: 2025-11-25|-32022/);
  });
}

test.serial("http: the headers tool returns the request's HTTP headers in the 2026-07-28 era", async (t) => {
  const { client } = await connect(t, "http", { headers: { "X-Fixture-Test": "yes", Authorization: "Bearer alice" } });
  const headers = JSON.parse(textOf(await within(10_000, "headers", client.callTool({ name: "headers", arguments: {} })))) as Record<string, string>;
  t.is(headers["x-fixture-test"], "yes");
  t.is(headers["authorization"], "Bearer alice");
  t.is(headers["mcp-protocol-version"], "2026-07-28");
});

test.serial("http: with --legacy serve the legacy route is sessionful: state per session, and 404 after forget_session", async (t) => {
  const { client } = await connect(t, "http", { legacy: "serve", negotiation: "legacy" });
  t.is(textOf(await within(10_000, "increment", client.callTool({ name: "increment", arguments: {} }))), "1");
  t.is(textOf(await within(10_000, "get_count", client.callTool({ name: "get_count", arguments: {} }))), "1");
  t.is(textOf(await within(10_000, "forget_session", client.callTool({ name: "forget_session", arguments: {} }))), "session forgotten");
  const error = await within(10_000, "call on a forgotten session", client.callTool({ name: "get_count", arguments: {} }).then(() => undefined, (e: unknown) => e));
  t.true(error instanceof Error);
  t.regex((error as Error).message, /404|Session not found/);
});

test.serial("stdio: over 2026-07-28 the discover probe runs in the client's sibling process, never on the session's own process", async (t) => {
  const { events, pid } = await connect(t, "stdio");
  const discover = readEvents(events).filter((e) => e.event === "discover");
  t.is(discover.length, 1);
  t.not(discover[0].pid, pid);
});

test.serial("http: a second client on the same modern server probes once more: one discover per connect", async (t) => {
  const events = tmpFile("fixtures-modern-events");
  t.teardown(() => rmSync(events, { force: true }));
  const fixture = await startHttpFixture("http", [], { FIXTURE_EVENTS: events }, "modern");
  t.teardown(() => fixture.close());
  for (let i = 1; i <= 3; i++) {
    const client = new Client({ name: "fixtures-modern-test", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
    t.teardown(() => within(10_000, "client.close", client.close()));
    await within(30_000, "connect", client.connect(new StreamableHTTPClientTransport(new URL(fixture.url))));
    t.is(count(events, "discover"), i);
  }
});

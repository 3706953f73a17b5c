/**
 * The gateway (src/gateway): the pool served at /mcp over Streamable HTTP, with real downstream clients —
 * the v2 SDK client in both eras and the v1 SDK client — and the fixture servers of both eras upstream.
 * The read-only tests share one pool and gateway; tests that change a catalog or need other options
 * start their own.
 */
import test, { type ExecutionContext } from "ava";
import { Client as V1Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as V1Transport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema, ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from "@modelcontextprotocol/client";
import { rmSync, writeFileSync } from "node:fs";
import { createPool, McpPool, parseConfig, type PoolConfigInput } from "../src/index.js";
import { serveGateway, type Gateway, type GatewayLogEvent, type GatewayOptions } from "../src/gateway/index.js";
import { HELLO_TEXT, HELLO_URI } from "./fixtures/catalog.js";
import { FIXTURE_SERVER, startHttpFixture, stdioServer, tmpFile, waitFor, within } from "./helpers/fixtures.js";

const SERVERS = { legacy: stdioServer([], undefined, "legacy"), modern: stdioServer([], undefined, "modern") };

interface Served {
  pool: McpPool;
  gateway: Gateway;
  logs: GatewayLogEvent[];
}

/** A pool and its gateway on a free loopback port, closed when the test ends. */
async function serve(t: ExecutionContext | undefined, config: PoolConfigInput = { servers: SERVERS }, options: GatewayOptions = {}): Promise<Served> {
  const pool = await createPool(config);
  const logs: GatewayLogEvent[] = [];
  const gateway = await serveGateway(pool, { port: 0, log: (e) => logs.push(e), ...options });
  t?.teardown(async () => {
    await gateway.close();
    await pool.close();
  });
  return { pool, gateway, logs };
}

let shared: Promise<Served> | undefined;
const sharedGateway = () => (shared ??= serve(undefined));
/** A second shared pool (one legacy server, a 10 KB message cap) for the tests of gateway options: each serves its own gateway on it. */
let small: Promise<McpPool> | undefined;
async function smallGateway(t: ExecutionContext, options: GatewayOptions): Promise<Served> {
  const pool = await (small ??= createPool({ servers: { legacy: SERVERS.legacy }, limits: { maxMessageMb: 0.01 } }));
  const logs: GatewayLogEvent[] = [];
  const gateway = await serveGateway(pool, { port: 0, log: (e) => logs.push(e), ...options });
  t.teardown(() => gateway.close());
  return { pool, gateway, logs };
}
test.after.always(async () => {
  const s = await shared?.catch(() => undefined);
  await s?.gateway.close();
  await s?.pool.close();
  await (await small?.catch(() => undefined))?.close();
});

type Era = "modern" | "legacy";
interface ClientOptions {
  name?: string;
  token?: string;
  onElicitation?: (params: { message: string }) => Record<string, unknown>;
}

/** A v2 SDK client connected to `url` in `era`, closed when the test ends. */
async function v2(t: ExecutionContext, url: string, era: Era, o: ClientOptions = {}): Promise<V2Client> {
  const client = new V2Client(
    { name: o.name ?? "gateway-test", version: "1.0.0" },
    { versionNegotiation: { mode: era === "modern" ? "auto" : "legacy" }, capabilities: o.onElicitation ? { elicitation: { form: {} } } : {} },
  );
  if (o.onElicitation) {
    const answer = o.onElicitation;
    client.setRequestHandler("elicitation/create", async (request) => answer(request.params as { message: string }) as never);
  }
  const headers: Record<string, string> = o.token ? { Authorization: `Bearer ${o.token}` } : {};
  await within(10_000, "v2 connect", client.connect(new V2Transport(new URL(url), { requestInit: { headers } })));
  t.teardown(() => client.close().catch(() => {}));
  return client;
}

/** A v1 SDK client (always legacy), closed when the test ends. */
async function v1(t: ExecutionContext, url: string, o: ClientOptions = {}): Promise<{ client: V1Client; transport: V1Transport }> {
  const client = new V1Client({ name: o.name ?? "gateway-test-v1", version: "1.0.0" }, { capabilities: o.onElicitation ? { elicitation: { form: {} } } : {} });
  if (o.onElicitation) {
    const answer = o.onElicitation;
    client.setRequestHandler(ElicitRequestSchema, async (request) => answer(request.params as { message: string }) as never);
  }
  const headers: Record<string, string> = o.token ? { Authorization: `Bearer ${o.token}` } : {};
  const transport = new V1Transport(new URL(url), { requestInit: { headers } });
  await within(10_000, "v1 connect", client.connect(transport));
  t.teardown(() => client.close().catch(() => {}));
  return { client, transport };
}

const textOf = (result: unknown) => ((result as { content: { text?: string }[] }).content[0]?.text ?? "");

for (const era of ["modern", "legacy"] as const) {
  test.serial(`a v2 client in the ${era} era lists, calls, reads and gets prompts under pool names`, async (t) => {
    const { gateway } = await sharedGateway();
    const client = await v2(t, gateway.url, era);
    t.is(client.getProtocolEra(), era);
    const tools = await within(10_000, "listTools", client.listTools());
    const names = tools.tools.map((x) => x.name);
    t.true(names.includes("legacy__echo") && names.includes("modern__echo"));
    for (const name of ["legacy__echo", "modern__echo"]) {
      t.is(textOf(await within(10_000, name, client.callTool({ name, arguments: { message: `hi ${era}` } }))), `hi ${era}`);
    }
    const read = await within(10_000, "readResource", client.readResource({ uri: HELLO_URI }));
    t.is((read.contents[0] as { text: string }).text, HELLO_TEXT);
    const prompts = await within(10_000, "listPrompts", client.listPrompts());
    t.true(prompts.prompts.some((p) => p.name === "modern__greet"));
    const prompt = await within(10_000, "getPrompt", client.getPrompt({ name: "modern__greet", arguments: { name: "Ada" } }));
    t.regex(JSON.stringify(prompt.messages), /Hello, Ada!/);
    const templates = await within(10_000, "listResourceTemplates", client.listResourceTemplates());
    t.true(templates.resourceTemplates.length > 0);
  });

  test.serial(`progress of a tool call reaches a ${era} v2 client`, async (t) => {
    const { gateway } = await sharedGateway();
    const client = await v2(t, gateway.url, era);
    const seen: number[] = [];
    const result = await within(10_000, "progress", client.callTool({ name: "legacy__progress", arguments: { steps: 3, intervalMs: 20 } }, { onprogress: (p) => seen.push(p.progress) }));
    t.is(textOf(result), "progress done");
    t.deepEqual(seen, [1, 2, 3]);
  });
}

test.serial("a v1 SDK client is served as a legacy client with its own Mcp-Session-Id", async (t) => {
  const { gateway } = await sharedGateway();
  const { client, transport } = await v1(t, gateway.url);
  t.regex(transport.sessionId ?? "", /^[A-Za-z0-9_-]{43}$/, "256 random bits, base64url");
  const result = await within(10_000, "callTool", client.callTool({ name: "modern__echo", arguments: { message: "v1" } }));
  t.is(textOf(result), "v1");
  const unknown = await within(10_000, "unknown tool", client.callTool({ name: "nope__nothing", arguments: {} }).then(() => undefined, (e: { code?: number }) => e));
  t.is(unknown?.code, -32602);
  // DELETE ends the session: its pool session closes, and the id is unknown from then on.
  const { logs } = await sharedGateway();
  const id = transport.sessionId!;
  await within(10_000, "terminateSession", transport.terminateSession());
  await waitFor(() => logs.some((e) => e.event === "session.close" && e.reason === "client"), 5_000);
  const after = await within(5_000, "list after DELETE", fetch(gateway.url, {
    method: "POST",
    body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list", params: {} }),
    headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", "Mcp-Session-Id": id, "Mcp-Protocol-Version": "2025-06-18" },
  }));
  t.is(after.status, 404);
  await after.body?.cancel();
});

test.serial("cancelling a downstream call cancels the upstream call", async (t) => {
  const { gateway } = await sharedGateway();
  const client = await v2(t, gateway.url, "legacy");
  const count = async () => JSON.parse(textOf(await client.callTool({ name: "legacy__stats", arguments: {} }))).cancelled as number;
  const before = await within(10_000, "stats", count());
  const controller = new AbortController();
  const call = client.callTool({ name: "legacy__slow", arguments: { ms: 60_000 } }, { signal: controller.signal });
  await waitFor(async () => (await within(5_000, "stats", client.callTool({ name: "legacy__stats", arguments: {} })).then((r) => JSON.parse(textOf(r)).calls as number)) > 0, 5_000);
  setTimeout(() => controller.abort(new Error("user gave up")), 100);
  await t.throwsAsync(within(10_000, "aborted call", call));
  await waitFor(async () => (await count()) > before, 8_000, 50);
  t.pass();
});

test.serial("list_changed of a server reaches every downstream client as the gateway's own", async (t) => {
  const { gateway } = await serve(t);
  const { client: watcher } = await v1(t, gateway.url, { name: "watcher" });
  let changed = 0;
  watcher.setNotificationHandler(ToolListChangedNotificationSchema, async () => void changed++);
  await within(10_000, "listTools", watcher.listTools());
  // A 2026-07-28 client hears it on its subscriptions/listen stream.
  const modern = await v2(t, gateway.url, "modern", { name: "modern-watcher" });
  let modernChanged = 0;
  modern.setNotificationHandler("notifications/tools/list_changed", () => void modernChanged++);
  await within(10_000, "listen", modern.listen({ toolsListChanged: true }));
  const actor = await v2(t, gateway.url, "legacy", { name: "actor" });
  await within(10_000, "add_tool", actor.callTool({ name: "legacy__add_tool", arguments: { name: "fresh" } }));
  await waitFor(() => changed > 0 && modernChanged > 0, 8_000);
  const tools = await within(10_000, "listTools", watcher.listTools());
  t.true(tools.tools.some((x) => x.name === "legacy__fresh"));
});

test.serial("elicitations go back to the client whose call caused them, and to no other (both eras, two clients at once)", async (t) => {
  const { gateway } = await sharedGateway();
  const heard: Record<string, string[]> = { alice: [], bob: [], carol: [] };
  const answer = (who: string) => (params: { message: string }) => {
    heard[who]!.push(params.message);
    return { action: "accept", content: { account: `${who}-account` } };
  };
  const alice = await v2(t, gateway.url, "modern", { name: "alice", onElicitation: answer("alice") });
  const bob = await v2(t, gateway.url, "modern", { name: "bob", onElicitation: answer("bob") });
  const { client: carol } = await v1(t, gateway.url, { name: "carol", onElicitation: answer("carol") });
  const [a, b, c] = await within(20_000, "three asks", Promise.all([
    alice.callTool({ name: "modern__ask", arguments: { kind: "elicitation", message: "for alice" } }),
    bob.callTool({ name: "modern__ask", arguments: { kind: "elicitation", message: "for bob" } }),
    carol.callTool({ name: "modern__ask", arguments: { kind: "elicitation", message: "for carol" } }),
  ]));
  t.deepEqual(heard, { alice: ["for alice"], bob: ["for bob"], carol: ["for carol"] });
  t.regex(textOf(a), /alice-account/);
  t.regex(textOf(b), /bob-account/);
  t.regex(textOf(c), /carol-account/);
});

test.serial("with tokens, a request without a valid bearer token gets 401 and says nothing more", async (t) => {
  const { gateway, logs } = await smallGateway(t, { tokens: ["s3cret-one", "s3cret-two"] });
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } });
  const post = (headers: Record<string, string>) =>
    fetch(gateway.url, { method: "POST", body, headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", ...headers } });
  const texts: string[] = [];
  for (const headers of <Record<string, string>[]>[{}, { Authorization: "Bearer wrong" }, { Authorization: "Basic czNjcmV0LW9uZQ==" }, { Authorization: "Bearer s3cret-on" }]) {
    const res = await within(5_000, "post", post(headers));
    t.is(res.status, 401);
    t.is(res.headers.get("www-authenticate"), 'Bearer realm="mcp"');
    texts.push(await res.text());
  }
  t.is(new Set(texts).size, 1, "every refusal reads the same");
  t.true(logs.filter((e) => e.event === "request.rejected" && e.status === 401).length >= 4);
  const client = await v2(t, gateway.url, "legacy", { token: "s3cret-two" });
  t.is(textOf(await within(10_000, "echo", client.callTool({ name: "legacy__echo", arguments: { message: "in" } }))), "in");
});

test.serial("a session id presented by another principal gets 404, as an unknown one does", async (t) => {
  const { gateway } = await smallGateway(t, { tokens: ["tok-a", "tok-b"] });
  const { transport } = await v1(t, gateway.url, { token: "tok-a" });
  const id = transport.sessionId!;
  const list = (token: string, sessionId: string) =>
    fetch(gateway.url, {
      method: "POST",
      body: JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list", params: {} }),
      headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream", Authorization: `Bearer ${token}`, "Mcp-Session-Id": sessionId, "Mcp-Protocol-Version": "2025-06-18" },
    });
  t.is((await within(5_000, "other principal", list("tok-b", id))).status, 404);
  t.is((await within(5_000, "unknown id", list("tok-a", "A".repeat(43)))).status, 404);
  const own = await within(5_000, "own principal", list("tok-a", id));
  t.is(own.status, 200);
  await own.body?.cancel();
});

test.serial("a request body over limits.maxMessageMb gets 413, and a foreign Origin 403", async (t) => {
  const { gateway } = await smallGateway(t, {});
  const big = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "legacy__echo", arguments: { message: "x".repeat(20_000) } } });
  const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
  const tooBig = await within(5_000, "big body", fetch(gateway.url, { method: "POST", body: big, headers }));
  t.is(tooBig.status, 413);
  await tooBig.body?.cancel();
  const small = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } });
  const foreign = await within(5_000, "foreign origin", fetch(gateway.url, { method: "POST", body: small, headers: { ...headers, Origin: "http://evil.example" } }));
  t.is(foreign.status, 403);
  await foreign.body?.cancel();
  const local = await within(5_000, "local origin", fetch(gateway.url, { method: "POST", body: small, headers: { ...headers, Origin: "http://localhost:5173" } }));
  t.is(local.status, 200);
  await local.body?.cancel();
});

test.serial("allowedOrigins lets the named browser origins in and keeps others out", async (t) => {
  const { gateway } = await smallGateway(t, { allowedOrigins: ["app.example.com"] });
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } } });
  const headers = { "Content-Type": "application/json", Accept: "application/json, text/event-stream" };
  const ok = await within(5_000, "allowed", fetch(gateway.url, { method: "POST", body, headers: { ...headers, Origin: "https://app.example.com" } }));
  t.is(ok.status, 200);
  await ok.body?.cancel();
  const no = await within(5_000, "other", fetch(gateway.url, { method: "POST", body, headers: { ...headers, Origin: "http://localhost:3000" } }));
  t.is(no.status, 403);
  await no.body?.cancel();
});

test.serial("past limits.maxSessions a new client gets 503 with Retry-After; an idle session closes after sessionIdleTimeoutMs", async (t) => {
  const { gateway, logs } = await serve(t, { servers: { legacy: SERVERS.legacy }, limits: { maxSessions: 1, sessionIdleTimeoutMs: 1_500 } });
  await v1(t, gateway.url, { name: "first" });
  const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "second", version: "1" } } });
  const res = await within(5_000, "second", fetch(gateway.url, { method: "POST", body, headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" } }));
  t.is(res.status, 503);
  t.truthy(res.headers.get("retry-after"));
  await res.body?.cancel();
  await waitFor(() => logs.some((e) => e.event === "session.close" && e.reason === "idle"), 8_000);
  const again = await within(5_000, "after idle", fetch(gateway.url, { method: "POST", body, headers: { "Content-Type": "application/json", Accept: "application/json, text/event-stream" } }));
  t.is(again.status, 200);
  await again.body?.cancel();
});

test.serial("forwarded headers reach the client's own session-scoped server connections, and nowhere else", async (t) => {
  const upstream = await startHttpFixture("http");
  t.teardown(() => upstream.close());
  const { gateway } = await serve(t, { servers: { scoped: { url: upstream.url, scope: "session" }, shared: { url: upstream.url } } }, { forwardHeaders: ["x-user"] });
  const headersOf = async (client: V2Client, tool: string) => JSON.parse(textOf(await within(10_000, tool, client.callTool({ name: tool, arguments: {} })))) as Record<string, string>;
  // One client sends x-user: ann, the other x-user: ben (the v2 transport's requestInit headers).
  const ben = new V2Client({ name: "ben", version: "1" });
  await within(10_000, "ben connect", ben.connect(new V2Transport(new URL(gateway.url), { requestInit: { headers: { "x-user": "ben" } } })));
  t.teardown(() => ben.close());
  const annClient = new V2Client({ name: "ann2", version: "1" });
  await within(10_000, "ann connect", annClient.connect(new V2Transport(new URL(gateway.url), { requestInit: { headers: { "x-user": "ann" } } })));
  t.teardown(() => annClient.close());
  t.is((await headersOf(annClient, "scoped__headers"))["x-user"], "ann");
  t.is((await headersOf(ben, "scoped__headers"))["x-user"], "ben");
  t.false("x-user" in (await headersOf(ben, "shared__headers")), "shared servers get no client's headers");
});

test.serial("/readyz and /mcp answer 503 until every server is ready or has failed once, then 200", async (t) => {
  const gate = tmpFile("gateway-ready");
  t.teardown(() => rmSync(gate, { force: true }));
  // A server that starts only once the test lets it: the pool is not ready before.
  const held = { command: "sh", args: ["-c", `while [ ! -f "${gate}" ]; do sleep 0.05; done; exec "${process.execPath}" "${FIXTURE_SERVER}" stdio`] };
  const pool = new McpPool(parseConfig({ servers: { held } }));
  t.teardown(() => pool.close());
  const gateway = await serveGateway(pool, { port: 0 });
  t.teardown(() => gateway.close());
  const base = gateway.url.replace(/\/mcp$/, "");
  t.is((await within(5_000, "healthz", fetch(`${base}/healthz`))).status, 200);
  t.is((await within(5_000, "readyz", fetch(`${base}/readyz`))).status, 503);
  const early = await within(5_000, "mcp", fetch(gateway.url, { method: "POST", body: "{}", headers: { "Content-Type": "application/json" } }));
  t.is(early.status, 503);
  t.is(early.headers.get("retry-after"), "1");
  writeFileSync(gate, "");
  await within(20_000, "pool ready", pool.ready());
  t.is((await within(5_000, "readyz", fetch(`${base}/readyz`))).status, 200);
  const client = await v2(t, gateway.url, "legacy");
  t.is(textOf(await within(10_000, "echo", client.callTool({ name: "held__echo", arguments: { message: "now" } }))), "now");
});

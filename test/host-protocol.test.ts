/**
 * The connection host on its own, in a real worker, spoken to through its two planes (see
 * src/common/protocol.ts) without the pool: readiness with the four catalogs, every request method,
 * the not-found codes, subscriptions (across a reopen), list_changed of prompts and resources, and
 * cancellation, against the fixture servers of both eras over stdio and Streamable HTTP.
 *
 * Serial: each test starts a worker and a server process (two with a restart), and thirty of them at
 * once on a busy two-core machine starved the fixtures of the time to start.
 */
import test, { type ExecutionContext } from "ava";
import { fileURLToPath } from "node:url";
import { BLOB_BASE64, BLOB_URI, COUNTER_URI, FILLER_PROMPTS, FILLER_RESOURCES, HELLO_TEXT, HELLO_URI, LISTED_TEMPLATES, MISSING_URI, NAMES } from "./fixtures/catalog.js";
import { ERA_REVISION, FIXTURE_ERAS, FIXTURE_TOOL_COUNT, readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, type FixtureEra } from "./helpers/fixtures.js";
import { hostSpec, HostHarness } from "./helpers/host-harness.js";
import { METHODS, rpcError } from "../workers/methods.js";
import { REQUEST_METHODS, type ConnectionSpec, type Outcome } from "../src/common/protocol.js";

const HOSTILE_SERVER = fileURLToPath(new URL("./fixtures/hostile-server.js", import.meta.url));

const TRANSPORTS = ["stdio", "http"] as const;
type Transport = (typeof TRANSPORTS)[number];

/** A host for the fixture of `era` over `transport`, opened, torn down with the test. */
async function openHost(t: ExecutionContext, era: FixtureEra, transport: Transport, options: { events?: string; spec?: Partial<ConnectionSpec> } = {}): Promise<HostHarness> {
  const env = options.events ? { FIXTURE_EVENTS: options.events } : undefined;
  let target: Parameters<typeof hostSpec>[0];
  if (transport === "stdio") {
    target = stdioServer([], env, era);
  } else {
    const fixture = await startHttpFixture("http", [], env, era);
    t.teardown(() => fixture.close());
    target = { url: fixture.url };
  }
  const host = new HostHarness(hostSpec(target, options.spec));
  t.teardown(() => host.close());
  host.open();
  return host;
}

function value(t: ExecutionContext, outcome: Outcome<unknown>): Record<string, unknown> {
  if (!outcome.ok) {
    t.fail(`expected a result, got ${outcome.error.code}: ${outcome.error.message}`);
    return {};
  }
  return outcome.value as Record<string, unknown>;
}

function errorOf(t: ExecutionContext, outcome: Outcome<unknown>): { code: string; mcpCode?: number } {
  if (outcome.ok) {
    t.fail(`expected an error, got ${JSON.stringify(outcome.value)}`);
    return { code: "none" };
  }
  return outcome.error;
}

function text(result: Record<string, unknown>): unknown {
  return (result.content as Array<{ text?: unknown }> | undefined)?.[0]?.text;
}

for (const era of FIXTURE_ERAS) {
  for (const transport of TRANSPORTS) {
    const name = `${era} ${transport}`;

    test.serial(`${name}: the ready state carries all four catalogs, the server and its era; every request method returns the server's result`, async (t) => {
      const host = await openHost(t, era, transport);
      const ready = await host.ready();
      t.is(ready.server.protocolVersion, ERA_REVISION[era]);
      t.is(ready.verdict.kind, era);
      t.is(ready.catalogs.tools.length, FIXTURE_TOOL_COUNT);
      t.is(ready.catalogs.resources.length, 3 + FILLER_RESOURCES);
      t.deepEqual(ready.catalogs.resourceTemplates.map((r) => r.uriTemplate), LISTED_TEMPLATES.map((r) => r.uriTemplate));
      t.is(ready.catalogs.prompts.length, 3 + FILLER_PROMPTS);
      t.true(ready.catalogs.resources.some((r) => r.uri === HELLO_URI));
      if (transport === "stdio") {
        t.true(typeof ready.pid === "number");
        t.deepEqual(host.pids, [ready.pid!]);
      }
      // One state message says it all: connecting, then ready.
      t.deepEqual(host.states.map((s) => s.state), ["connecting", "ready"]);

      t.is(text(value(t, await host.request("tools/call", { name: "echo", arguments: { message: "hi" } }))), "hi");
      t.like(value(t, await host.request("resources/read", { uri: HELLO_URI })), { contents: [{ uri: HELLO_URI, text: HELLO_TEXT }] });
      t.like(value(t, await host.request("resources/read", { uri: BLOB_URI })), { contents: [{ uri: BLOB_URI, blob: BLOB_BASE64 }] });
      t.like(value(t, await host.request("resources/read", { uri: "fixture://items/42" })), { contents: [{ text: "42" }] });
      const listed = value(t, await host.request("resources/list", {}));
      t.true(Array.isArray(listed.resources) && (listed.resources as unknown[]).length > 0);
      const templates = value(t, await host.request("resources/templates/list", {}));
      t.is((templates.resourceTemplates as unknown[]).length, LISTED_TEMPLATES.length);
      t.like(value(t, await host.request("prompts/get", { name: "greet", arguments: { name: "Ada" } })), { messages: [{ role: "user", content: { type: "text", text: "Hello, Ada!" } }] });
      const prompts = value(t, await host.request("prompts/list", {}));
      t.true((prompts.prompts as Array<{ name: string }>).some((p) => p.name === "greet"));
      const completion = value(t, await host.request("completion/complete", { ref: { type: "ref/prompt", name: "greet" }, argument: { name: "name", value: "al" } }));
      t.deepEqual((completion.completion as { values: string[] }).values, NAMES.filter((n) => n.startsWith("al")));
      // The 2026-07-28 wire member is the wire's, not the caller's.
      t.false("resultType" in completion);
    });

    // Through the pool over both transports in surface-*.test.ts; here once, over stdio in the legacy era.
    if (transport === "stdio" && era === "legacy") test.serial(`${name}: an unknown resource is RESOURCE_NOT_FOUND, an unknown prompt PROMPT_NOT_FOUND, a bad argument INVALID_ARGUMENTS`, async (t) => {
      const host = await openHost(t, era, transport);
      await host.ready();
      const missing = errorOf(t, await host.request("resources/read", { uri: MISSING_URI }));
      t.is(missing.code, "RESOURCE_NOT_FOUND");
      // The v1 fixture sends the 2025 spec's -32002; the v2 one, -32602 with data.uri.
      t.is(missing.mcpCode, era === "legacy" ? -32002 : -32602);
      const prompt = errorOf(t, await host.request("prompts/get", { name: "nope" }));
      t.is(prompt.code, "PROMPT_NOT_FOUND");
      t.is(prompt.mcpCode, -32602);
      t.is(errorOf(t, await host.request("prompts/get", { name: "greet", arguments: {} })).code, "INVALID_ARGUMENTS");
      t.is(errorOf(t, await host.request("prompts/get", { name: "broken" })).code, "PROTOCOL_ERROR");
      t.is(errorOf(t, await host.request("completion/complete", { ref: { type: "ref/prompt", name: "nope" }, argument: { name: "x", value: "" } })).code, "PROMPT_NOT_FOUND");
      t.is(errorOf(t, await host.request("tools/call", { name: "echo", arguments: { message: 1 } })).code, "INVALID_ARGUMENTS");
      // The connection serves on.
      t.like(value(t, await host.request("resources/read", { uri: HELLO_URI })), { contents: [{ text: HELLO_TEXT }] });
    });

    // Through the pool over both transports in surface-*.test.ts; here once, over stdio in the legacy era.
    if (transport === "stdio" && era === "legacy") test.serial(`${name}: list_changed of prompts and of resources reaches the main thread as catalogs`, async (t) => {
      const host = await openHost(t, era, transport);
      await host.ready();
      value(t, await host.request("tools/call", { name: "add_prompt", arguments: { name: "fresh_prompt" } }));
      await waitFor(() => host.catalogChanges.some((c) => c.prompts?.some((p) => p.name === "fresh_prompt")), 10_000);
      const uri = "fixture://static/fresh.txt";
      value(t, await host.request("tools/call", { name: "add_resource", arguments: { uri } }));
      await waitFor(() => host.catalogChanges.some((c) => c.resources?.some((r) => r.uri === uri)), 10_000);
      // Templates go with resources.
      const change = host.catalogChanges.find((c) => c.resources?.some((r) => r.uri === uri))!;
      t.is(change.resourceTemplates?.length, LISTED_TEMPLATES.length);
      t.false("tools" in change);
      t.like(value(t, await host.request("resources/read", { uri })), { contents: [{ uri }] });
    });

    // Through the pool over both transports in surface-*.test.ts; here once, over stdio in the legacy era.
    if (transport === "stdio" && era === "legacy") test.serial(`${name}: a cancelled request ends ABORTED and the server is told; a late one ends TIMEOUT`, async (t) => {
      const events = tmpFile("host-cancel");
      const host = await openHost(t, era, transport, { events });
      await host.ready();
      const slow = host.send("resources/read", { uri: "fixture://slow/20000" }, { timeoutMs: 30_000 });
      await waitFor(() => readEvents(events).some((e) => e.event === "read" && e.uri === "fixture://slow/20000"), 10_000);
      const started = Date.now();
      host.cancel(slow.id, "caller gave up");
      const cancelled = errorOf(t, await slow.result);
      t.is(cancelled.code, "ABORTED");
      t.true(Date.now() - started < 5_000);
      await waitFor(() => readEvents(events).some((e) => e.event === "cancelled" && e.tool === "read:slow"), 10_000);
      t.is(errorOf(t, await host.request("resources/read", { uri: "fixture://slow/20000" }, { timeoutMs: 300 })).code, "TIMEOUT");
      t.is(text(value(t, await host.request("tools/call", { name: "echo", arguments: { message: "after" } }))), "after");
    });

    // Through the pool over both transports in surface-*.test.ts; here once, over stdio in the legacy era.
    if (transport === "stdio" && era === "legacy") test.serial(`${name}: a subscribed resource's updates reach resourceUpdated; after unsubscribe they stop`, async (t) => {
      const host = await openHost(t, era, transport);
      await host.ready();
      t.deepEqual(value(t, await host.request("resources/subscribe", { uri: COUNTER_URI })), {});
      value(t, await host.request("tools/call", { name: "bump_resource", arguments: {} }));
      await waitFor(() => host.updates.includes(COUNTER_URI), 10_000);
      t.deepEqual(value(t, await host.request("resources/unsubscribe", { uri: COUNTER_URI })), {});
      const before = host.updates.length;
      value(t, await host.request("tools/call", { name: "bump_resource", arguments: {} }));
      // The update would come before the tool's result; a little more for a slow machine.
      await new Promise((resolve) => setTimeout(resolve, 500));
      t.is(host.updates.length, before);
    });
  }

  test.serial(`${era} stdio: subscriptions survive a reopen: the host subscribes again after the server is killed`, async (t) => {
    const events = tmpFile("host-resubscribe");
    const host = await openHost(t, era, "stdio", { events });
    const first = await host.ready();
    t.deepEqual(value(t, await host.request("resources/subscribe", { uri: COUNTER_URI })), {});
    t.is(errorOf(t, await host.request("tools/call", { name: "crash", arguments: {} })).code, "CONNECTION_LOST");
    const second = await host.ready(2);
    t.not(second.pid, first.pid);
    // The new server process was subscribed to again, by the host alone.
    const subscribedAgain = (e: { pid?: number; event: string; uri?: string; filter?: { resourceSubscriptions?: string[] } }) =>
      e.pid === second.pid && (era === "legacy" ? e.event === "subscribe" && e.uri === COUNTER_URI : e.event === "listen" && !!e.filter?.resourceSubscriptions?.includes(COUNTER_URI));
    t.true(readEvents(events).some(subscribedAgain));
    value(t, await host.request("tools/call", { name: "bump_resource", arguments: {} }));
    await waitFor(() => host.updates.includes(COUNTER_URI), 10_000);
    t.deepEqual(host.states.map((s) => s.state), ["connecting", "ready", "reconnecting", "ready"]);
  });

  test.serial(`${era} stdio: a replacement host subscribes to spec.subscriptions at its first connect`, async (t) => {
    const host = await openHost(t, era, "stdio", { spec: { subscriptions: [COUNTER_URI] } });
    await host.ready();
    value(t, await host.request("tools/call", { name: "bump_resource", arguments: {} }));
    await waitFor(() => host.updates.includes(COUNTER_URI), 10_000);
    t.deepEqual(host.updates, [COUNTER_URI]);
  });
}

test.serial("a host closed before open() returns at once, leaving nothing behind", async (t) => {
  const host = new HostHarness(hostSpec(stdioServer()));
  t.teardown(() => host.close());
  await host.close();
  t.deepEqual(host.pids, []);
});

test.serial("a tool the server lists again with an unusable inputSchema is skipped with the host's own warning, and the rest reach catalogs", async (t) => {
  const host = new HostHarness(hostSpec({ command: process.execPath, args: [HOSTILE_SERVER] }));
  t.teardown(() => host.close());
  host.open();
  const ready = await host.ready();
  t.true(ready.catalogs.tools.some((tool) => tool.name === "typed"));
  value(t, await host.request("tools/call", { name: "set_schema", arguments: { schema: JSON.stringify({ type: "string" }) } }));
  await waitFor(() => host.catalogChanges.some((c) => c.tools !== undefined), 10_000);
  const tools = host.catalogChanges.find((c) => c.tools)!.tools!;
  t.false(tools.some((tool) => tool.name === "typed"));
  t.true(tools.some((tool) => tool.name === "echo"));
  t.like(host.logs[0], { level: "warning", logger: "mcp-worker-pool" });
  t.regex(String(host.logs[0]?.data), /tool "typed" skipped/);
});

test("the method table covers every request method, refuses results of the wrong shape and maps error answers by method", (t) => {
  t.deepEqual(Object.keys(METHODS).sort(), [...REQUEST_METHODS].sort());
  const wrong: Array<[keyof typeof METHODS, unknown]> = [
    ["resources/read", { content: [] }],
    ["prompts/get", { description: "no messages" }],
    ["completion/complete", { completion: { total: 1 } }],
    ["resources/list", { items: [] }],
    ["resources/templates/list", { resources: [] }],
    ["prompts/list", {}],
    ["tools/call", { content: "not an array" }],
    ["resources/subscribe", "ok"],
  ];
  for (const [method, result] of wrong) t.is(METHODS[method].check(result).ok, false, method);
  t.deepEqual(METHODS["resources/read"].check({ contents: [], extra: 1 }), { ok: true, value: { contents: [], extra: 1 } });

  const code = (method: keyof typeof METHODS, error: unknown, params: Record<string, unknown> = {}) => rpcError(method, error, params).code;
  t.is(code("resources/read", { code: -32002, message: "Resource not found" }), "RESOURCE_NOT_FOUND");
  t.is(rpcError("resources/read", { code: -32002, message: "gone" }, {}).mcpCode, -32002);
  t.is(code("resources/read", { code: -32602, message: "Resource x not found", data: { uri: "x" } }), "RESOURCE_NOT_FOUND");
  t.is(code("resources/subscribe", { code: -32602, message: "Resource x not found", data: { uri: "x" } }), "RESOURCE_NOT_FOUND");
  t.is(code("resources/read", { code: -32602, message: "bad uri" }), "INVALID_ARGUMENTS");
  t.is(code("prompts/get", { code: -32602, message: "MCP error -32602: Unknown prompt: x" }), "PROMPT_NOT_FOUND");
  t.is(code("prompts/get", { code: -32602, message: "Prompt x not found" }), "PROMPT_NOT_FOUND");
  t.is(code("prompts/get", { code: -32602, message: "argument 'name' is required" }), "INVALID_ARGUMENTS");
  t.is(code("tools/call", { code: -32602, message: "Unknown tool: x" }), "TOOL_NOT_FOUND");
  t.is(code("tools/call", { code: -32002, message: "a tool's own code" }), "PROTOCOL_ERROR");
  t.is(code("tools/call", { code: -32099, message: "too large" }), "RESULT_TOO_LARGE");
  t.is(code("prompts/list", { code: -32603, message: "internal" }), "PROTOCOL_ERROR");
  t.is(code("prompts/list", { nonsense: true }), "PROTOCOL_ERROR");
});

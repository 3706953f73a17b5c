/**
 * Requests from servers (sampling, elicitation in form and URL mode, roots) answered by the handlers on
 * the main thread, routed to the right user: a session's connections and a session's calls reach that
 * session's handlers and nobody else's. Both eras, against real fixture servers: the legacy one (v1 SDK)
 * sends the request on the connection during the call; the 2026-07-28 one answers `input_required`, and
 * the pool sends the call again with the answer. Bounded throughout; every pool is closed in teardown.
 */
import test from "ava";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { CallToolResult, ElicitResult } from "@modelcontextprotocol/client";
import { createPool, McpPoolError, type PoolOptions, type ServerRequestContext } from "../src/index.js";
import { assertEra, FIXTURE_ERAS, startHttpFixture, stdioServer, waitFor, within, type FixtureEra } from "./helpers/fixtures.js";

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

function json(result: CallToolResult): any {
  return JSON.parse(text(result));
}

const SAMPLED = { role: "assistant" as const, content: { type: "text" as const, text: "a summary" }, model: "test-model" };
const ROOTS = [{ uri: "file:///srv/work", name: "work" }];

/** Handlers that answer everything and record the context of each request. */
function recordingHandlers(seen: Array<{ kind: string; ctx: ServerRequestContext; params: unknown }>, account = "acme"): PoolOptions {
  return {
    onSampling: (params, ctx) => {
      seen.push({ kind: "sampling", ctx, params });
      return SAMPLED;
    },
    onElicitation: (params, ctx) => {
      seen.push({ kind: "elicitation", ctx, params });
      return (params as { mode?: string }).mode === "url" ? { action: "accept" } : { action: "accept", content: { account } };
    },
    roots: (ctx) => {
      seen.push({ kind: "roots", ctx, params: undefined });
      return ROOTS;
    },
  };
}

async function serverConfig(t: import("ava").ExecutionContext, era: FixtureEra, transport: "stdio" | "http", scope: "shared" | "session" = "shared") {
  if (transport === "stdio") return { ...stdioServer([], undefined, era), scope };
  const http = await startHttpFixture("http", [], undefined, era);
  t.teardown(() => http.close());
  return { url: http.url, scope };
}

for (const era of FIXTURE_ERAS) {
  for (const transport of ["stdio", "http"] as const) {
    test.serial(`${era} over ${transport}: the pool's handlers answer sampling, form and URL elicitation and roots, with ctx naming server and tool`, async (t) => {
      const seen: Array<{ kind: string; ctx: ServerRequestContext; params: unknown }> = [];
      const pool = await createPool({ servers: { s: await serverConfig(t, era, transport) } }, recordingHandlers(seen));
      t.teardown(() => pool.close());
      assertEra(t, pool, era);

      const sampled = json(await within(20_000, "sampling", pool.callTool("s__ask", { kind: "sampling", message: "summarise this" })));
      t.like(sampled, { model: "test-model", content: { text: "a summary" } });
      const form = json(await within(20_000, "elicitation", pool.callTool("s__ask", { kind: "elicitation", message: "which account?" })));
      t.deepEqual(form, { action: "accept", content: { account: "acme" } });
      const url = json(await within(20_000, "url elicitation", pool.callTool("s__ask", { kind: "elicitation_url", message: "connect" })));
      t.is(url.action, "accept");
      const roots = json(await within(20_000, "roots", pool.callTool("s__ask", { kind: "roots" })));
      t.deepEqual(roots.roots, ROOTS);

      // server-everything asks for the roots by itself once initialized, so its roots request may come at any point.
  t.deepEqual(seen.map((s) => s.kind).sort(), ["elicitation", "elicitation", "roots", "sampling"]);
      for (const { ctx } of seen) {
        t.is(ctx.server, "s");
        t.is(ctx.tool, "ask");
        t.is(ctx.sessionId, undefined);
        t.true(ctx.signal instanceof AbortSignal);
      }
      t.like(seen[0]!.params, { maxTokens: 64 });
      t.like(seen[1]!.params, { message: "which account?" });
      t.like(seen[2]!.params, { mode: "url", url: "https://example.com/connect" });
    });
  }

  test.serial(`${era}: two sessions with concurrent elicitations on a session-scoped server each see only their own`, async (t) => {
    const poolSeen: unknown[] = [];
    const pool = await createPool(
      { servers: { s: { ...stdioServer([], undefined, era), scope: "session" } }, limits: { acquireTimeoutMs: 30_000 } },
      { onElicitation: (params) => (poolSeen.push(params), { action: "decline" }) },
    );
    t.teardown(() => pool.close());
    const seen: Record<string, Array<{ message: string; sessionId: string | undefined }>> = { alice: [], bob: [] };
    const handle = (who: string) =>
      pool.session(who, {
        onElicitation: async (params, ctx) => {
          seen[who]!.push({ message: (params as { message: string }).message, sessionId: ctx.sessionId });
          // Both requests are outstanding at once.
          await new Promise((r) => setTimeout(r, 200));
          return { action: "accept", content: { account: who } } satisfies ElicitResult;
        },
      });
    const alice = handle("alice");
    const bob = handle("bob");
    const [a, b] = await within(40_000, "two sessions", Promise.all([
      alice.callTool("s__ask", { kind: "elicitation", message: "for alice" }),
      bob.callTool("s__ask", { kind: "elicitation", message: "for bob" }),
    ]));
    t.deepEqual(json(a).content, { account: "alice" });
    t.deepEqual(json(b).content, { account: "bob" });
    t.deepEqual(seen.alice, [{ message: "for alice", sessionId: "alice" }]);
    t.deepEqual(seen.bob, [{ message: "for bob", sessionId: "bob" }]);
    t.deepEqual(poolSeen, [], "the pool's handler saw no session's request");
  });
}

test.serial("2026-07-28 on a shared connection: each call's input request reaches the handler of the session that made the call, concurrently", async (t) => {
  const poolSeen: unknown[] = [];
  const pool = await createPool(
    { servers: { s: stdioServer([], undefined, "modern") } },
    { onElicitation: (params) => (poolSeen.push(params), { action: "decline" }) },
  );
  t.teardown(() => pool.close());
  assertEra(t, pool, "modern");
  const seen: Record<string, string[]> = { alice: [], bob: [] };
  const session = (who: string) =>
    pool.session(who, {
      onElicitation: async (params, ctx) => {
        seen[who]!.push(`${(params as { message: string }).message} (${ctx.sessionId})`);
        await new Promise((r) => setTimeout(r, 100));
        return { action: "accept", content: { account: who } };
      },
    });
  const alice = session("alice");
  const bob = session("bob");
  const calls = [];
  for (let i = 0; i < 3; i++) {
    calls.push(alice.callTool("s__ask", { kind: "elicitation", message: `alice ${i}` }), bob.callTool("s__ask", { kind: "elicitation", message: `bob ${i}` }));
  }
  const results = await within(30_000, "six concurrent calls", Promise.all(calls));
  results.forEach((r, i) => t.deepEqual(json(r).content, { account: i % 2 === 0 ? "alice" : "bob" }));
  t.deepEqual(seen.alice!.sort(), ["alice 0 (alice)", "alice 1 (alice)", "alice 2 (alice)"]);
  t.deepEqual(seen.bob!.sort(), ["bob 0 (bob)", "bob 1 (bob)", "bob 2 (bob)"]);
  // A call made without a session goes to the pool's handler.
  t.is(json(await pool.callTool("s__ask", { kind: "elicitation", message: "pool's" })).action, "decline");
  t.deepEqual(poolSeen.map((p) => (p as { message: string }).message), ["pool's"]);
});

test.serial("2026-07-28 on a shared connection with no pool handler: a session's call declares its session's capability in its own request, and its handler answers", async (t) => {
  const pool = await createPool({ servers: { s: stdioServer([], undefined, "modern") } });
  t.teardown(() => pool.close());
  const seen: Array<string | undefined> = [];
  const alice = pool.session("alice", { onElicitation: (_p, ctx) => (seen.push(ctx.sessionId), { action: "accept", content: { account: "alice" } }) });
  t.deepEqual(json(await within(20_000, "alice's call", alice.callTool("s__ask", { kind: "elicitation" }))).content, { account: "alice" });
  t.deepEqual(seen, ["alice"]);
  // A call without a session declares nothing: the server cannot ask it.
  const outcome = await within(10_000, "the pool's call", pool.callTool("s__ask", { kind: "elicitation" }).then((r) => r, (e: unknown) => e));
  t.true(outcome instanceof McpPoolError || (outcome as CallToolResult).isError === true);
  t.deepEqual(seen, ["alice"]);
});

test.serial("legacy on a shared connection: with one call in flight its request goes to that call's session; with two, to the pool's handler", async (t) => {
  const poolSeen: Array<string | undefined> = [];
  const pool = await createPool(
    { servers: { s: stdioServer() } },
    { onElicitation: (_params, ctx) => (poolSeen.push(ctx.sessionId), { action: "decline" }) },
  );
  t.teardown(() => pool.close());
  assertEra(t, pool, "legacy");
  const aliceSeen: Array<string | undefined> = [];
  const alice = pool.session("alice", { onElicitation: (_p, ctx) => (aliceSeen.push(ctx.sessionId), { action: "accept", content: { account: "alice" } }) });
  const bob = pool.session("bob", { onElicitation: () => t.fail("bob's handler saw a request") as never });

  t.deepEqual(json(await within(20_000, "one call", alice.callTool("s__ask", { kind: "elicitation", message: "hi" }))).content, { account: "alice" });
  t.deepEqual(aliceSeen, ["alice"]);

  // Two calls in flight on the one shared connection: the pool cannot tell whose request is whose.
  const slow = bob.callTool("s__slow", { ms: 1500 });
  await new Promise((r) => setTimeout(r, 300));
  const asked = await within(20_000, "with another call in flight", alice.callTool("s__ask", { kind: "elicitation", message: "hi" }));
  t.is(json(asked).action, "decline");
  t.deepEqual(poolSeen, [undefined], "the pool's handler answered, and was told no session");
  await within(20_000, "the slow call", slow);
  t.deepEqual(aliceSeen, ["alice"]);
});

test.serial("legacy over Streamable HTTP on a shared connection: concurrent calls of two sessions each get their own elicitation, tied by the stream it came on", async (t) => {
  const http = await startHttpFixture("http");
  t.teardown(() => http.close());
  const poolSeen: unknown[] = [];
  const pool = await createPool({ servers: { s: { url: http.url } } }, { onElicitation: (params) => (poolSeen.push(params), { action: "decline" }) });
  t.teardown(() => pool.close());
  assertEra(t, pool, "legacy");
  // Each handler answers only once both have been asked: both calls are in flight when each request comes.
  let bothAsked!: () => void;
  const barrier = new Promise<void>((resolve) => (bothAsked = resolve));
  const seen: Record<string, string[]> = { alice: [], bob: [] };
  const session = (who: string) =>
    pool.session(who, {
      onElicitation: async (params, ctx) => {
        seen[who]!.push(`${(params as { message: string }).message} (${ctx.sessionId}, ${ctx.tool})`);
        if (seen.alice!.length > 0 && seen.bob!.length > 0) bothAsked();
        await within(10_000, "the other session's request", barrier);
        return { action: "accept", content: { account: who } };
      },
    });
  const [a, b] = await within(30_000, "two concurrent calls", Promise.all([
    session("alice").callTool("s__ask", { kind: "elicitation", message: "for alice" }),
    session("bob").callTool("s__ask", { kind: "elicitation", message: "for bob" }),
  ]));
  t.deepEqual(json(a).content, { account: "alice" });
  t.deepEqual(json(b).content, { account: "bob" });
  t.deepEqual(seen, { alice: ["for alice (alice, ask)"], bob: ["for bob (bob, ask)"] });
  t.deepEqual(poolSeen, [], "the pool's handler saw no session's request");
});

test.serial("legacy: without a handler the server's request is refused with -32601 at once", async (t) => {
  const pool = await createPool({ servers: { s: stdioServer() } }, { onSampling: () => SAMPLED });
  t.teardown(() => pool.close());
  const started = Date.now();
  for (const kind of ["elicitation", "roots"]) {
    const result = await within(10_000, kind, pool.callTool("s__ask", { kind }));
    t.true(result.isError);
    t.is(json(result).error.code, -32601, kind);
  }
  t.true(Date.now() - started < 5_000);
  // What has a handler is still answered.
  t.is(json(await pool.callTool("s__ask", { kind: "sampling" })).model, "test-model");
});

test.serial("2026-07-28: without a handler a call whose server asks for input fails at once, not at its deadline", async (t) => {
  const pool = await createPool({ servers: { s: stdioServer([], undefined, "modern") } });
  t.teardown(() => pool.close());
  const started = Date.now();
  const outcome = await within(10_000, "no handler", pool.callTool("s__ask", { kind: "elicitation" }, { timeoutMs: 8_000 }).then((r) => r, (e: unknown) => e));
  t.true(Date.now() - started < 5_000);
  // The v2 server sees no elicitation capability in the call's _meta: it refuses (a tool error or a JSON-RPC error).
  if (outcome instanceof McpPoolError) t.pass();
  else t.true((outcome as CallToolResult).isError);
});

for (const era of FIXTURE_ERAS) {
  test.serial(`${era}: a handler that throws gives the server an error, and the pool stays usable`, async (t) => {
    const pool = await createPool({ servers: { s: stdioServer([], undefined, era) } }, {
      onSampling: () => {
        throw new Error("no model configured");
      },
    });
    t.teardown(() => pool.close());
    const outcome = await within(10_000, "throwing handler", pool.callTool("s__ask", { kind: "sampling" }).then((r) => r, (e: unknown) => e));
    if (era === "legacy") {
      const result = outcome as CallToolResult;
      t.true(result.isError);
      t.regex(json(result).error.message, /no model configured/);
    } else {
      // 2026-07-28: no request is left to answer with an error; the call fails with the handler's error.
      t.true(outcome instanceof McpPoolError);
      t.is((outcome as McpPoolError).code, "PROTOCOL_ERROR");
      t.regex((outcome as McpPoolError).message, /no model configured/);
    }
    t.is(text(await pool.callTool("s__echo", { message: "still here" })), "still here");
  });

  test.serial(`${era}: a handler that never answers cannot make the call outlive its timeoutMs, and its signal aborts`, async (t) => {
    let signal: AbortSignal | undefined;
    const pool = await createPool({ servers: { s: stdioServer([], undefined, era) } }, {
      onElicitation: (_params, ctx) => {
        signal = ctx.signal;
        return new Promise(() => {});
      },
    });
    t.teardown(() => pool.close());
    const started = Date.now();
    const error = await within(10_000, "never-answering handler", pool.callTool("s__ask", { kind: "elicitation" }, { timeoutMs: 1_000 }).then(() => undefined, (e: unknown) => e));
    t.true(error instanceof McpPoolError);
    t.is((error as McpPoolError).code, "TIMEOUT");
    t.true(Date.now() - started < 3_000);
    t.truthy(signal);
    await within(5_000, "the handler's signal", new Promise<void>((resolve) => (signal!.aborted ? resolve() : signal!.addEventListener("abort", () => resolve()))));
    t.is(text(await pool.callTool("s__echo", { message: "after" })), "after");
  });
}

test.serial("legacy: when the server cancels its request (its own timeout) the handler's signal aborts and its late answer is dropped", async (t) => {
  let signal: AbortSignal | undefined;
  let answered!: () => void;
  const late = new Promise<void>((resolve) => (answered = resolve));
  const pool = await createPool({ servers: { s: stdioServer() } }, {
    onElicitation: async (_params, ctx) => {
      signal = ctx.signal;
      await new Promise((r) => setTimeout(r, 1_500));
      answered();
      return { action: "accept", content: { account: "too late" } };
    },
  });
  t.teardown(() => pool.close());
  const result = await within(10_000, "server-side timeout", pool.callTool("s__ask", { kind: "elicitation", timeoutMs: 300 }));
  t.true(result.isError, "the server gave up on its request");
  t.true(signal?.aborted);
  await within(5_000, "the late answer", late);
  t.is(text(await pool.callTool("s__echo", { message: "fine" })), "fine");
});

test("handlers that are not functions, or roots that are not a list, make createPool throw CONFIG_INVALID before anything starts", async (t) => {
  const config = { servers: { s: stdioServer() } };
  for (const options of [{ onSampling: 5 }, { onElicitation: "yes" }, { roots: "file:///x" }, { roots: [{ name: "no uri" }] }]) {
    const error = await t.throwsAsync(createPool(config, options as never));
    t.is((error as McpPoolError).code, "CONFIG_INVALID");
  }
});

test.serial("a session's handlers are fixed while it is open: other handlers for the same id are INVALID_ARGUMENTS", async (t) => {
  const pool = await createPool({ servers: { s: { ...stdioServer(), scope: "session" } } });
  t.teardown(() => pool.close());
  const onElicitation = () => ({ action: "decline" as const });
  const s = pool.session("u", { onElicitation });
  await s.listTools();
  t.notThrows(() => pool.session("u", { onElicitation }));
  t.notThrows(() => pool.session("u"));
  const error = t.throws(() => pool.session("u", { onElicitation: () => ({ action: "cancel" as const }) }));
  t.is((error as McpPoolError).code, "INVALID_ARGUMENTS");
});

test.serial("legacy: a handler whose connection dies (the server is killed) sees its signal abort", async (t) => {
  let signal: AbortSignal | undefined;
  let asked!: () => void;
  const reached = new Promise<void>((resolve) => (asked = resolve));
  const pool = await createPool({ servers: { s: stdioServer() } }, {
    onElicitation: (_params, ctx) => {
      signal = ctx.signal;
      asked();
      return new Promise(() => {});
    },
  });
  t.teardown(() => pool.close());
  const call = pool.callTool("s__ask", { kind: "elicitation" }, { timeoutMs: 15_000 }).then(() => undefined, (e: unknown) => e);
  await within(10_000, "the handler is asked", reached);
  process.kill(pool.stats().servers.s!.connections[0]!.pid!, "SIGKILL");
  await within(5_000, "the handler's signal", new Promise<void>((resolve) => (signal!.aborted ? resolve() : signal!.addEventListener("abort", () => resolve()))));
  const error = await within(15_000, "the call", call);
  t.true(error instanceof McpPoolError);
  t.is((error as McpPoolError).code, "CONNECTION_LOST");
});

for (const era of FIXTURE_ERAS) {
  test.serial(`${era}: server log messages are log events, filtered at the level setLoggingLevel sets (${era === "legacy" ? "logging/setLevel per connection; none set: all of them" : "the level in each request's _meta; none set: none"}), with sessionId on a session's connection`, async (t) => {
    const pool = await createPool({ servers: { s: stdioServer([], undefined, era), u: { ...stdioServer([], undefined, era), scope: "session" } } });
    t.teardown(() => pool.close());
    assertEra(t, pool, era, ["s"]);
    const logs: Array<{ server?: string; sessionId?: string; level?: string; data?: unknown }> = [];
    pool.on("log", (e: { server?: string; sessionId?: string; level?: string; logger?: string; data?: unknown }) => {
      if (e.logger === "fixture") logs.push({ server: e.server, ...(e.sessionId !== undefined ? { sessionId: e.sessionId } : {}), level: e.level, data: e.data });
    });
    const ALL = "debug,info,warning,error";
    await within(10_000, "log, no level set", pool.callTool("s__log", { levels: ALL }));
    await pool.setLoggingLevel("warning", { server: "s" });
    await within(10_000, "log at warning", pool.callTool("s__log", { levels: ALL }));
    const expected = [...(era === "legacy" ? ["debug", "info", "warning", "error"] : []), "warning", "error"];
    // Log events come over the control plane, results over the data plane: wait for them, bounded.
    await waitFor(() => logs.length >= expected.length, 10_000);
    t.deepEqual(logs.map((l) => l.level), expected);
    t.deepEqual(logs.at(-1), { server: "s", level: "error", data: "error message" });

    // Every server's level, applied by a connection that opens later (a session's own) at its connect.
    await pool.setLoggingLevel("info");
    logs.length = 0;
    await within(20_000, "a session's log", pool.session("alice").callTool("u__log", { levels: "debug,info" }));
    await waitFor(() => logs.length >= 1, 10_000);
    t.deepEqual(logs, [{ server: "u", sessionId: "alice", level: "info", data: "info message" }]);
  });
}

const requireFrom = createRequire(import.meta.url);
const EVERYTHING = join(dirname(requireFrom.resolve("@modelcontextprotocol/server-everything/package.json")), "dist", "index.js");

test.serial("server-everything: trigger-sampling-request, trigger-elicitation-request, trigger-url-elicitation and get-roots-list are answered by the pool's handlers", async (t) => {
  const seen: Array<{ kind: string; ctx: ServerRequestContext; params: unknown }> = [];
  const handlers = recordingHandlers(seen);
  const pool = await createPool({ servers: { e: { command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" } } }, {
    ...handlers,
    // Its form asks for fields of its own: declining is a valid answer whatever they are.
    onElicitation: (params, ctx) => (seen.push({ kind: "elicitation", ctx, params }), (params as { mode?: string }).mode === "url" ? { action: "accept" } : { action: "decline" }),
  });
  t.teardown(() => pool.close());
  // Registered once the server has read the client's capabilities, then announced with list_changed.
  const wanted = ["e__trigger-sampling-request", "e__trigger-elicitation-request", "e__trigger-url-elicitation", "e__get-roots-list"];
  await waitFor(async () => {
    const names = (await pool.listTools()).map((tool) => tool.name);
    return wanted.every((name) => names.includes(name));
  }, 20_000);
  const sampled = await within(20_000, "sampling", pool.callTool("e__trigger-sampling-request", { prompt: "hello", maxTokens: 20 }));
  t.not(sampled.isError, true);
  t.regex(JSON.stringify(sampled.content), /a summary/);
  const elicited = await within(20_000, "elicitation", pool.callTool("e__trigger-elicitation-request", {}));
  t.not(elicited.isError, true);
  t.regex(JSON.stringify(elicited.content), /decline/i);
  const url = await within(20_000, "url elicitation", pool.callTool("e__trigger-url-elicitation", { url: "https://example.com/auth" }));
  t.not(url.isError, true);
  const roots = await within(20_000, "roots", pool.callTool("e__get-roots-list", {}));
  t.regex(JSON.stringify(roots.content), /file:\/\/\/srv\/work/);
  // Sorted: server-everything also asks for the roots on its own, 350 ms after initialize, whenever that falls
  // (get-roots-list then answers from what it got).
  t.deepEqual(seen.map((s) => s.kind).sort(), ["elicitation", "elicitation", "roots", "sampling"]);
  for (const { ctx } of seen) t.is(ctx.server, "e");
});

test.serial("setLoggingLevel: server-everything's log messages below the level set no longer arrive as log events", async (t) => {
  const pool = await createPool({ servers: { e: { command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" } } });
  t.teardown(() => pool.close());
  const logs: string[] = [];
  pool.on("log", (e: { server?: string; level?: string; logger?: string }) => {
    if (e.server === "e" && e.logger !== "mcp-worker-pool") logs.push(e.level!);
  });
  const LEVELS = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];
  // Each time it is toggled on, it sends one message of a random level at once.
  const toggles = async (n: number) => {
    for (let i = 0; i < 2 * n; i++) await within(10_000, "toggle", pool.callTool("e__toggle-simulated-logging", {}));
    await new Promise((r) => setTimeout(r, 300));
  };
  await toggles(4);
  t.true(logs.length >= 4, `every level arrives before a level is set (${logs.join(", ")})`);
  await pool.setLoggingLevel("error", { server: "e" });
  logs.length = 0;
  await toggles(16);
  t.true(logs.length >= 1, "messages at error or above still arrive");
  for (const level of logs) t.true(LEVELS.indexOf(level) >= LEVELS.indexOf("error"), level);
  await t.throwsAsync(pool.setLoggingLevel("loud" as never), { instanceOf: McpPoolError });
  await t.throwsAsync(pool.setLoggingLevel("info", { server: "nope" }), { instanceOf: McpPoolError });
});

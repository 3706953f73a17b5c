/**
 * Calling tools through the pool over every transport, and every way a call can end:
 * result, tool-level error, JSON-RPC error, bad arguments, unknown tool, timeout, abort,
 * dead server. Plus the shape of stats() and of the errors. Every test runs once per protocol era
 * (issue 13), against the legacy fixture and the 2026-07-28 one, except legacy SSE, which only the
 * legacy era has.
 */
import test, { type ExecutionContext } from "ava";
import { rmSync } from "node:fs";
import type { CallToolResult, Progress } from "@modelcontextprotocol/client";
import { createPool, McpPool, McpPoolError, type PoolConfigInput, type ServerConfigInput } from "../src/index.js";
import { assertEra, ERA_REVISION, FIXTURE_ERAS, FIXTURE_TOOL_COUNT, readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, type FixtureEra, type HttpFixture } from "./helpers/fixtures.js";
import { testSlots } from "./helpers/faults.js";

/**
 * At most 6 tests of this file hold their own pool or HTTP fixture at once (each test runs in both
 * eras, so twice as many would otherwise start servers together): on a loaded 2-core machine, more
 * at once push connects past their 10 s deadline. A test takes one slot, however many of both it uses.
 */
const slots = testSlots(6);
const holding = new WeakSet<ExecutionContext>();
async function slot(t: ExecutionContext): Promise<void> {
  if (holding.has(t)) return;
  holding.add(t);
  await slots(t);
}

/** A pool closed at teardown, whose every server speaks `era`. */
async function pool(t: ExecutionContext, era: FixtureEra, config: PoolConfigInput): Promise<McpPool> {
  await slot(t);
  const p = await createPool(config);
  t.teardown(() => p.close());
  assertEra(t, p, era, Object.keys(p.stats().servers).filter((name) => p.stats().servers[name]!.state === "ready"));
  return p;
}

/**
 * startHttpFixture gives the server 10 s to listen; on a machine running several suites at once a
 * cold node start can take longer. Starting it is not what these tests check, so try up to 3 times.
 */
async function httpFixture(t: ExecutionContext, mode: "http" | "sse", era: FixtureEra = "legacy", env?: Record<string, string>): Promise<HttpFixture> {
  await slot(t);
  for (let attempt = 1; ; attempt++) {
    try {
      const fixture = await startHttpFixture(mode, [], env, era);
      t.teardown(() => fixture.close());
      return fixture;
    } catch (error) {
      if (attempt === 3) throw error;
      t.log(`fixture (${mode}) did not start, retrying: ${String(error)}`);
    }
  }
}

function text(result: CallToolResult): string {
  const first = result.content[0];
  if (first?.type !== "text") throw new Error(`expected a text content, got ${JSON.stringify(result.content)}`);
  return first.text;
}

/** Awaits a rejection and checks it is an McpPoolError with `code`. */
async function rejectsWith(t: ExecutionContext, promise: Promise<unknown>, code: McpPoolError["code"]): Promise<McpPoolError> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof McpPoolError, `expected McpPoolError, got ${String(error)}`);
  t.is((error as McpPoolError).code, code);
  return error as McpPoolError;
}

/**
 * One pool per era for the tests that only need a plain fixture and do not look at counters: fewer
 * processes and workers starting at once on a small machine.
 */
const sharedPools = new Map<FixtureEra, Promise<McpPool>>();
async function shared(t: ExecutionContext, era: FixtureEra): Promise<McpPool> {
  if (!sharedPools.has(era)) await slot(t);
  let p = sharedPools.get(era);
  if (!p) {
    p = createPool({ servers: { fixture: stdioServer([], undefined, era) } }).then(async (created) => {
      // Its first attempt may fail on a loaded machine; what the tests check begins once it serves.
      try {
        await waitFor(() => created.stats().servers.fixture!.state === "ready", 30_000);
      } catch (error) {
        await created.close();
        throw error;
      }
      return created;
    });
    sharedPools.set(era, p);
  }
  const ready = await p;
  assertEra(t, ready, era);
  return ready;
}
test.after.always(async () => {
  await Promise.all([...sharedPools.values()].map(async (p) => (await p.catch(() => undefined))?.close()));
});

const cancelled = (file: string) => () => readEvents(file).some((e) => e.event === "cancelled" && e.tool === "slow");

// ---------------------------------------------------------------- transports

// Serial tests run first in ava: the HTTP fixtures start before this file's other servers load the machine.
// Legacy SSE exists in the legacy era only (2026-07-28 has no SSE transport): one test, no era loop.
test.serial('callTool echoes over legacy SSE with transport: "sse"', async (t) => {
  const fixture = await httpFixture(t, "sse");
  const p = await pool(t, "legacy", { servers: { legacy: { url: fixture.url, transport: "sse" } } });
  t.is(text(await p.callTool("legacy__echo", { message: "hello sse" })), "hello sse");
});

/** How a test reaches the fixture: a stdio server config, or a Streamable HTTP fixture's URL. */
type Kind = "stdio" | "http";
const KINDS: readonly Kind[] = ["stdio", "http"];

/** A server config of `kind` for the fixture of `era`, with FIXTURE_EVENTS set to `events`. */
async function fixtureServerOf(t: ExecutionContext, kind: Kind, era: FixtureEra, events: string): Promise<ServerConfigInput> {
  if (kind === "stdio") return stdioServer([], { FIXTURE_EVENTS: events }, era);
  return { url: (await httpFixture(t, "http", era, { FIXTURE_EVENTS: events })).url };
}

for (const era of FIXTURE_ERAS) {
  test(`${era}: callTool echoes over stdio`, async (t) => {
    const p = await shared(t, era);
    const result = await p.callTool("fixture__echo", { message: "hello stdio" });
    t.deepEqual(result.content, [{ type: "text", text: "hello stdio" }]);
  });

  test(`${era}: large arguments over stdio reach the server intact: multi-byte characters, escapes and a lone surrogate`, async (t) => {
    const p = await shared(t, era);
    // Far over the size from which the stdio transport writes a request as bytes (workers/stdio-transport.ts), and over one pipe read.
    const message = `${'é€😀"\\\n\t\u0001'.repeat(4_000)}\ud800${"x".repeat(100_000)}`;
    const result = await p.callTool("fixture__echo", { message });
    t.deepEqual(result.content, [{ type: "text", text: message }]);
  });

  test.serial(`${era}: callTool echoes over Streamable HTTP`, async (t) => {
    const fixture = await httpFixture(t, "http", era);
    const p = await pool(t, era, { servers: { remote: { url: fixture.url } } });
    t.is(p.config.servers.remote!.transport, "http");
    t.is(text(await p.callTool("remote__echo", { message: "hello http" })), "hello http");
  });

  test(`${era}: 1,000 concurrent calls all resolve with their own echo`, async (t) => {
    // Most of them queue behind the 64 in flight: a generous acquire timeout for a busy machine.
    const p = await pool(t, era, { servers: { fixture: stdioServer([], undefined, era) }, limits: { acquireTimeoutMs: 30_000 } });
    const messages = Array.from({ length: 1_000 }, (_, i) => `message-${i}`);
    const results = await Promise.all(messages.map((message) => p.callTool("fixture__echo", { message })));
    t.deepEqual(results.map(text), messages);
    const stats = p.stats();
    t.is(stats.calls.ok, 1_000);
    t.is(stats.calls.failed, 0);
    t.is(stats.calls.inFlight, 0);
    t.is(stats.calls.queued, 0);
  });

  // -------------------------------------------------------------- outcomes

  test(`${era}: a tool result with isError: true resolves as a result`, async (t) => {
    const p = await shared(t, era);
    const result = await p.callTool("fixture__fail", { message: "nope" });
    t.true(result.isError);
    t.is(text(result), "nope");
  });

  test(`${era}: a JSON-RPC error from the server rejects with PROTOCOL_ERROR carrying mcpCode, server and tool`, async (t) => {
    const p = await shared(t, era);
    // Not -32042: that is URL elicitation's code in 2025-11-25, which a 2026-07-28 server may not send
    // (the v2 SDK's server answers -32603 in its place). -32050 means nothing special in either era.
    const error = await rejectsWith(t, p.callTool("fixture__rpc_error", { code: -32050 }), "PROTOCOL_ERROR");
    t.is(error.mcpCode, -32050);
    t.is(error.server, "fixture");
    t.is(error.tool, "rpc_error");
  });

  test(`${era}: arguments that do not match the inputSchema reject with INVALID_ARGUMENTS`, async (t) => {
    const p = await shared(t, era);
    const error = await rejectsWith(t, p.callTool("fixture__echo", { message: 5 }), "INVALID_ARGUMENTS");
    t.is(error.server, "fixture");
    t.is(error.tool, "echo");
    // The connection is fine afterwards.
    t.is(text(await p.callTool("fixture__echo", { message: "still here" })), "still here");
  });

  test(`${era}: an unknown tool name rejects with TOOL_NOT_FOUND`, async (t) => {
    const p = await shared(t, era);
    await rejectsWith(t, p.callTool("fixture__no_such_tool", {}), "TOOL_NOT_FOUND");
    await rejectsWith(t, p.callTool("echo", { message: "x" }), "TOOL_NOT_FOUND");
  });

  // Cancellation: notifications/cancelled on stdio and legacy HTTP; 2026-07-28 over HTTP closes the
  // call's answer stream. Either way the fixture's tool sees its signal abort and records "cancelled".
  for (const kind of KINDS) {
    test(`${era}: callTool over ${kind} rejects with TIMEOUT when the server does not answer in time, and cancels it on the server`, async (t) => {
      const events = tmpFile("calls-timeout-events");
      t.teardown(() => rmSync(events, { force: true }));
      const p = await pool(t, era, { servers: { fixture: await fixtureServerOf(t, kind, era, events) } });
      const started = Date.now();
      const error = await rejectsWith(t, p.callTool("fixture__slow", { ms: 10_000 }, { timeoutMs: 300 }), "TIMEOUT");
      t.true(Date.now() - started < 8_000, "settles near its deadline, not after the server's 10 s");
      t.is(error.server, "fixture");
      t.is(error.tool, "slow");
      await waitFor(cancelled(events), 10_000);
      t.pass();
    });

    test(`${era}: callTool over ${kind} rejects with ABORTED when its signal aborts, and cancels it on the server`, async (t) => {
      const events = tmpFile("calls-abort-events");
      t.teardown(() => rmSync(events, { force: true }));
      const p = await pool(t, era, { servers: { fixture: await fixtureServerOf(t, kind, era, events) } });
      const controller = new AbortController();
      const call = p.callTool("fixture__slow", { ms: 10_000 }, { signal: controller.signal, timeoutMs: 20_000 });
      // Abort once the server has the call, so the cancel has something to cancel.
      await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "slow"), 10_000);
      const started = Date.now();
      controller.abort();
      await rejectsWith(t, call, "ABORTED");
      t.true(Date.now() - started < 8_000, "settles soon after the abort, not after the server's 10 s");
      await waitFor(cancelled(events), 10_000);
      t.pass();
    });
  }

  test(`${era}: callTool with an already aborted signal rejects with ABORTED`, async (t) => {
    const p = await shared(t, era);
    await rejectsWith(t, p.callTool("fixture__echo", { message: "x" }, { signal: AbortSignal.abort() }), "ABORTED");
    t.is(text(await p.callTool("fixture__echo", { message: "after" })), "after");
  });

  // Over Streamable HTTP a call's progress comes on its answer stream, in both eras.
  for (const kind of KINDS) {
    for (const intervalMs of [20, 0]) {
      const when = intervalMs ? "as they come" : "sent right before the result";
      test(`${era}: progress notifications over ${kind} ${when} reach onProgress`, async (t) => {
        const p = kind === "stdio" ? await shared(t, era) : await pool(t, era, { servers: { fixture: { url: (await httpFixture(t, "http", era)).url } } });
        const seen: Progress[] = [];
        const result = await p.callTool("fixture__progress", { steps: 3, intervalMs }, { onProgress: (progress) => seen.push(progress) });
        t.is(text(result), "progress done");
        t.deepEqual(
          seen.map((s) => [s.progress, s.total]),
          [[1, 3], [2, 3], [3, 3]],
        );
      });
    }
  }

  // -------------------------------------------------------------- dead servers

  test(`${era}: calls to servers that cannot start fail fast with SERVER_UNAVAILABLE while createPool resolves and the others serve`, async (t) => {
    const p = await pool(t, era, {
      servers: {
        good: stdioServer([], undefined, era),
        missing: { command: "/nonexistent/binary", toolCallTimeoutMs: 30_000 },
        exits: { ...stdioServer(["--exit-on-start"], undefined, era), reconnect: { maxAttempts: 0 }, toolCallTimeoutMs: 30_000 },
      },
    });
    for (const server of ["missing", "exits"]) {
      const callStarted = Date.now();
      const error = await rejectsWith(t, p.callTool(`${server}__echo`, { message: "x" }), "SERVER_UNAVAILABLE");
      t.true(Date.now() - callStarted < 10_000, "well under the 30 s call timeout");
      t.is(error.server, server);
      t.is(error.tool, "echo");
    }
    t.is(text(await p.callTool("good__echo", { message: "alive" })), "alive");
    const stats = p.stats();
    t.is(stats.servers.good!.state, "ready");
    t.not(stats.servers.missing!.state, "ready");
    t.not(stats.servers.exits!.state, "ready");
  });

  // -------------------------------------------------------------- stats

  test(`${era}: stats() is a JSON-serialisable snapshot with pid and threadId for stdio connections and counted calls`, async (t) => {
    const p = await pool(t, era, { servers: { fixture: stdioServer([], undefined, era) }, limits: { maxWorkers: 4, maxSessions: 7 } });
    await p.callTool("fixture__echo", { message: "one" });
    const pidResult = await p.callTool("fixture__pid", {});
    await t.throwsAsync(p.callTool("fixture__rpc_error", {}));

    const stats = p.stats();
    t.deepEqual(JSON.parse(JSON.stringify(stats)), stats);
    t.deepEqual(Object.keys(stats).sort(), ["calls", "crashes", "servers", "sessions", "workers"]);
    t.deepEqual(stats.workers, { active: 1, max: 4, queued: 0 });
    t.deepEqual(stats.sessions, { active: 0, max: 7 });
    t.deepEqual(stats.calls, { total: 3, ok: 2, failed: 1, inFlight: 0, queued: 0 });
    t.deepEqual(stats.crashes, { server: 0, worker: 0 });
    t.deepEqual(Object.keys(stats.servers), ["fixture"]);

    const server = stats.servers.fixture!;
    t.is(server.state, "ready");
    t.is(server.tools, FIXTURE_TOOL_COUNT);
    t.is(server.protocolVersion, ERA_REVISION[era]);
    t.is(server.connections.length, 1);
    const conn = server.connections[0]!;
    t.is(typeof conn.id, "string");
    t.is(conn.state, "ready");
    t.is(conn.pid, Number(text(pidResult)), "pid is the stdio server's process id");
    t.true(Number.isInteger(conn.threadId) && conn.threadId! > 0);
    t.is(conn.inFlight, 0);
    t.is(conn.calls, 3);
    t.is(conn.restarts, 0);
    t.is(conn.sessionId, undefined);

    const slow = p.callTool("fixture__slow", { ms: 300 });
    t.is(p.stats().calls.inFlight, 1);
    await slow;
    t.deepEqual(p.stats().calls, { total: 4, ok: 3, failed: 1, inFlight: 0, queued: 0 });
  });
}

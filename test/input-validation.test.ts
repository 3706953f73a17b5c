/**
 * Bad input from callers: every public method answers it with McpPoolError INVALID_ARGUMENTS
 * (rejecting; `pool.session()` throws, since it returns its handle synchronously), decided on the
 * main thread before anything is counted or sent. Plus the one rule for a session's headers, and
 * user callbacks that throw without taking the host down. What reaches a connection runs once per
 * protocol era (issue 13); what the main thread decides alone runs in one era, alternating.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import test, { type ExecutionContext } from "ava";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPool, McpPoolError, parseConfig, type PoolEvent } from "../src/index.js";
import { assertEra, ERA_REVISION, FIXTURE_ERAS, startHttpFixture, stdioServer, type FixtureEra } from "./helpers/fixtures.js";

const CALLBACK_HOST = fileURLToPath(new URL("./helpers/callback-host.js", import.meta.url));

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

/** How a promise-returning call ended: "resolved", the McpPoolError's code, or what else happened. */
async function outcome(call: () => unknown): Promise<string> {
  let promise: unknown;
  try {
    promise = call();
  } catch (error) {
    return `threw synchronously: ${String(error)}`;
  }
  if (!(promise instanceof Promise)) return `returned ${String(promise)}`;
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return error instanceof McpPoolError ? error.code : `rejected untyped: ${String(error)}`;
  }
}

/** What a synchronous call threw: the McpPoolError's code, or what else happened. */
function thrown(call: () => unknown): string {
  try {
    call();
    return "did not throw";
  } catch (error) {
    return error instanceof McpPoolError ? error.code : `threw untyped: ${String(error)}`;
  }
}

/** A shared and a session-scoped server; events recorded from the start. A call left counted would hold close() for 30 s. */
async function openPool(t: ExecutionContext, era: FixtureEra): Promise<{ pool: McpPool; events: string[] }> {
  const pool = new McpPool(
    parseConfig({
      servers: { fixture: stdioServer([], undefined, era), s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { acquireTimeoutMs: 30_000, drainTimeoutMs: 30_000 },
    }),
  );
  t.teardown(() => pool.close());
  const events: string[] = [];
  for (const name of ["session:open", "session:close"]) pool.on(name, (e: PoolEvent) => events.push(`${name} ${e.sessionId}`));
  await pool.ready();
  assertEra(t, pool, era);
  return { pool, events };
}

/** The fixture's own count of tools/call requests it received (this call included). */
async function serverCalls(pool: McpPool): Promise<number> {
  return (JSON.parse(text(await pool.callTool("fixture__stats", {}))) as { calls: number }).calls;
}

function countersOf(pool: McpPool): unknown {
  const { calls, sessions } = pool.stats();
  return { calls, sessions };
}

// Serial: the tests compare counters of one pool before and after, and each starts server processes.

// What the main thread decides before anything is sent runs in one era (alternating, so both fixtures serve some);
// what reaches a connection (a session's headers, callbacks across a loss) runs in both.
const MAIN_THREAD_ONLY: Record<string, FixtureEra> = { input: "legacy", ids: "modern", options: "legacy", json: "modern", names: "legacy", once: "modern" };
const only = (what: keyof typeof MAIN_THREAD_ONLY, era: FixtureEra) => MAIN_THREAD_ONLY[what] === era;

for (const era of FIXTURE_ERAS) {
  if (only("input", era)) test.serial(`${era}: bad input to callTool and to a session's callTool rejects with INVALID_ARGUMENTS, never throws, and counts nothing`, async (t) => {
    const { pool, events } = await openPool(t, era);
    const before = countersOf(pool);
    const callsBefore = await serverCalls(pool);
    const counted = countersOf(pool);
    const session = pool.session("valid");
    const notASignal = { aborted: false, addEventListener() {}, removeEventListener() {} };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const bad: Array<[string, any[]]> = [
      ["a null name", [null]],
      ["a number as name", [42]],
      ["an empty name", [""]],
      ["null arguments", ["fixture__echo", null]],
      ["an array as arguments", ["fixture__echo", ["hi"]]],
      ["a string as arguments", ["fixture__echo", "hi"]],
      ["null options", ["fixture__echo", { message: "hi" }, null]],
      ["a string as options", ["fixture__echo", { message: "hi" }, "fast"]],
      ["an array as options", ["fixture__echo", { message: "hi" }, []]],
      ["a signal that is not an AbortSignal", ["fixture__echo", { message: "hi" }, { signal: notASignal }]],
      ["a string as signal", ["fixture__echo", { message: "hi" }, { signal: "abort" }]],
      ["an onProgress that is not a function", ["fixture__echo", { message: "hi" }, { onProgress: "log" }]],
      ["an object as onProgress", ["fixture__echo", { message: "hi" }, { onProgress: {} }]],
      ["timeoutMs Infinity", ["fixture__echo", { message: "hi" }, { timeoutMs: Infinity }]],
      ["timeoutMs 2^31", ["fixture__echo", { message: "hi" }, { timeoutMs: 2 ** 31 }]],
      ["timeoutMs as a string", ["fixture__echo", { message: "hi" }, { timeoutMs: "1000" }]],
      ["timeoutMs NaN", ["fixture__echo", { message: "hi" }, { timeoutMs: NaN }]],
      ["timeoutMs 0", ["fixture__echo", { message: "hi" }, { timeoutMs: 0 }]],
      ["a negative timeoutMs", ["fixture__echo", { message: "hi" }, { timeoutMs: -5 }]],
      ["a bad option on a session-scoped server's call", ["s__echo", { message: "hi" }, { sessionId: "x", signal: {} }]],
    ];
    for (const [what, args] of bad) {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      t.is(await outcome(() => (pool.callTool as any)(...args)), "INVALID_ARGUMENTS", `pool.callTool with ${what}`);
      if (args[2] && typeof args[2] === "object" && "sessionId" in args[2]) continue;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      t.is(await outcome(() => (session.callTool as any)(...args)), "INVALID_ARGUMENTS", `session.callTool with ${what}`);
    }
    // Nothing was counted, no session was opened (not even the handle's), nothing reached the server.
    t.deepEqual(countersOf(pool), counted);
    t.deepEqual(events, []);
    t.is(await serverCalls(pool), callsBefore + 1);
    t.deepEqual(before, { calls: { total: 0, ok: 0, failed: 0, inFlight: 0, queued: 0 }, sessions: { active: 0, max: 200 } });
    // The largest timer Node honours is a valid deadline.
    t.is(text(await pool.callTool("fixture__echo", { message: "max" }, { timeoutMs: 2 ** 31 - 1 })), "max");
    // Nothing in flight was left behind: close() does not wait for its drain deadline.
    const started = Date.now();
    await pool.close();
    t.true(Date.now() - started < 15_000, `close() took ${Date.now() - started} ms`);
  });

  if (only("ids", era)) test.serial(`${era}: callTool's sessionId and pool.session(id) share one validation of the session id`, async (t) => {
    const { pool, events } = await openPool(t, era);
    const longest = "x".repeat(256);
    for (const id of ["", null, 5, {}, ["a"], "x".repeat(257)]) {
      const label = JSON.stringify(id);
      t.is(await outcome(() => pool.callTool("fixture__echo", { message: "hi" }, { sessionId: id as string })), "INVALID_ARGUMENTS", `callTool with sessionId ${label}`);
      t.is(await outcome(() => pool.callTool("s__echo", { message: "hi" }, { sessionId: id as string })), "INVALID_ARGUMENTS", `session server with sessionId ${label}`);
      t.is(thrown(() => pool.session(id as string)), "INVALID_ARGUMENTS", `pool.session(${label})`);
    }
    t.deepEqual(events, []);
    t.is(pool.stats().sessions.active, 0);
    // The longest allowed id works both ways, and names the same session.
    await pool.callTool("s__increment", {}, { sessionId: longest });
    t.is(text(await pool.session(longest).callTool("s__get_count")), "1");
    t.deepEqual(events, [`session:open ${longest}`]);
  });

  if (only("options", era)) test.serial(`${era}: bad session options throw McpPoolError INVALID_ARGUMENTS from pool.session()`, async (t) => {
    const { pool, events } = await openPool(t, era);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const session = pool.session as (id: unknown, options?: any) => unknown;
    for (const [what, options] of [
      ["null options", null],
      ["a string as options", "x"],
      ["null headers", { headers: null }],
      ["an array as headers", { headers: ["a"] }],
      ["a number as a header value", { headers: { "X-A": 5 } }],
      ["a header name that is not a token", { headers: { "X A": "1" } }],
      ["a header value with a line break", { headers: { "X-A": "1\r\nX-Injected: 2" } }],
      ["one header given twice", { headers: { "X-A": "1", "x-a": "2" } }],
    ] as const) {
      t.is(thrown(() => session.call(pool, "sess", options)), "INVALID_ARGUMENTS", what);
    }
    t.deepEqual(events, []);
  });

  test.serial(`${era}: a session's headers are fixed while it is open: conflicting headers are refused, never applied to another caller's calls`, async (t) => {
    const fixture = await startHttpFixture("http", [], undefined, era);
    t.teardown(() => fixture.close());
    const pool = await createPool({ servers: { h: { url: fixture.url, scope: "session" } }, limits: { acquireTimeoutMs: 30_000 } });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const auth = async (call: Promise<CallToolResult>) => (JSON.parse(text(await call)) as Record<string, string | undefined>).authorization;

    const alice = pool.session("u", { headers: { Authorization: "Bearer alice" } });
    // Made before the session opened: it must not get alice's connection once she opened it.
    const mallory = pool.session("u", { headers: { Authorization: "Bearer mallory" } });
    t.is(await auth(alice.callTool("h__headers")), "Bearer alice");
    t.is(await outcome(() => mallory.callTool("h__headers")), "INVALID_ARGUMENTS");
    t.is(thrown(() => pool.session("u", { headers: { Authorization: "Bearer mallory" } })), "INVALID_ARGUMENTS");
    t.is(thrown(() => pool.session("u", { headers: {} })), "INVALID_ARGUMENTS");
    // The same headers again (names are case-insensitive), or none at all, is the same session.
    t.is(await auth(pool.session("u", { headers: { authorization: "Bearer alice" } }).callTool("h__headers")), "Bearer alice");
    t.is(await auth(pool.session("u").callTool("h__headers")), "Bearer alice");
    t.is(await auth(pool.callTool("h__headers", {}, { sessionId: "u" })), "Bearer alice");

    // A session opened without headers keeps having none.
    t.is(await auth(pool.callTool("h__headers", {}, { sessionId: "v" })), undefined);
    t.is(thrown(() => pool.session("v", { headers: { Authorization: "Bearer late" } })), "INVALID_ARGUMENTS");

    // Once the session is closed, the id opens afresh with the next caller's headers.
    await alice.close();
    t.is(await auth(mallory.callTool("h__headers")), "Bearer mallory");
    t.is(await outcome(() => alice.callTool("h__headers")), "INVALID_ARGUMENTS");
    t.is(pool.stats().sessions.active, 2);
  });

  if (only("json", era)) test.serial(`${era}: arguments that are not JSON are INVALID_ARGUMENTS, decided before anything is sent`, async (t) => {
    const { pool } = await openPool(t, era);
    const callsBefore = await serverCalls(pool);
    const counted = countersOf(pool);
    const circular: Record<string, unknown> = { message: "hi" };
    circular.self = { again: circular };
    let deep: Record<string, unknown> = { message: "bottom" };
    for (let i = 0; i < 10_000; i++) deep = { message: "hi", nested: deep };
    const bad: Array<[string, unknown]> = [
      ["a function", { message: "hi", callback: () => {} }],
      ["a Symbol", { message: "hi", tag: Symbol("x") }],
      ["a BigInt", { message: "hi", n: 10n }],
      ["a circular object", circular],
      ["an object nested 10,000 deep", deep],
      ["NaN", { message: "hi", n: NaN }],
      ["Infinity in an array", { message: "hi", list: [1, Infinity] }],
      ["undefined in an array", { message: "hi", list: [1, undefined] }],
      ["a Date", { message: "hi", when: new Date(0) }],
      ["a Map", { message: "hi", map: new Map([["a", 1]]) }],
      ["a class instance", { message: "hi", at: new URL("http://x/") }],
      ["a getter that throws", Object.defineProperty({ message: "hi" }, "boom", { enumerable: true, get: () => { throw new Error("boom"); } })],
    ];
    for (const [what, args] of bad) {
      const call = pool.callTool("fixture__echo", args as Record<string, unknown>);
      const error = await t.throwsAsync(call, undefined, what);
      t.true(error instanceof McpPoolError, `${what}: ${String(error)}`);
      t.is((error as McpPoolError).code, "INVALID_ARGUMENTS", `${what}: ${error?.message}`);
      t.is((error as McpPoolError).server, "fixture", what);
      t.is((error as McpPoolError).tool, "echo", what);
    }
    t.deepEqual(countersOf(pool), counted);
    t.is(await serverCalls(pool), callsBefore + 1);
    // JSON is fine however it is built: members left undefined are left out (as JSON.stringify does),
    // objects without a prototype, and nesting well within the bound.
    let fine: Record<string, unknown> = { leaf: [1, "two", true, null, { three: 3.5 }] };
    for (let i = 0; i < 50; i++) fine = { nested: fine };
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { message: "bare" });
    t.is(text(await pool.callTool("fixture__echo", { message: "hi", optional: undefined, fine })), "hi");
    t.is(text(await pool.callTool("fixture__echo", bare)), "bare");
  });

  if (only("names", era)) test.serial(`${era}: servers may be named like Object.prototype's members`, async (t) => {
    const pool = await createPool({ servers: { constructor: stdioServer([], undefined, era), toString: stdioServer([], undefined, era) } });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    t.is(text(await pool.callTool("constructor__echo", { message: "a" })), "a");
    t.is(text(await pool.callTool("toString__echo", { message: "b" })), "b");
    t.deepEqual(Object.keys(pool.stats().servers).sort(), ["constructor", "toString"]);
    const name: string = "constructor";
    t.is(pool.stats().servers[name]!.state, "ready");
    t.is(await outcome(() => pool.callTool("hasOwnProperty__echo", { message: "c" })), "TOOL_NOT_FOUND");
  });

  test.serial(`${era}: a throwing or rejecting user callback (onProgress, event listeners) neither kills the host nor breaks the call`, async (t) => {
    const child = spawn(process.execPath, [CALLBACK_HOST, era], { stdio: ["ignore", "pipe", "pipe"] });
    t.teardown(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve(null);
      }, 45_000);
      child.once("close", (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    t.is(code, 0, `stdout: ${stdout}\nstderr: ${stderr}`);
    const lines = stdout.trim().split("\n");
    t.deepEqual(lines.filter((l) => !l.startsWith("warnings ")), [
      `protocol ${ERA_REVISION[era]}`,
      "progress-throws progress done 3",
      "progress-rejects progress done 3",
      "session-open-throws hi",
      "lost-throws CONNECTION_LOST",
      "after-loss ok",
      "closed",
    ]);
    // Each throwing callback was reported (once per callback), not silently swallowed.
    const warnings = Number(lines.find((l) => l.startsWith("warnings "))?.slice("warnings ".length));
    t.true(warnings >= 4, `warnings: ${warnings}; stderr: ${stderr}`);
  });

  if (only("once", era)) test(`${era}: call options are read once: a getter that answers differently after the check cannot slip a bad value into the call`, async (t) => {
    const { pool } = await openPool(t, era);
    let reads = 0;
    const options = {
      get signal(): AbortSignal | undefined {
        reads++;
        return reads === 1 ? undefined : ({ aborted: false } as AbortSignal);
      },
    };
    t.is(await outcome(() => pool.callTool("fixture__echo", { message: "once" }, options)), "resolved");
    t.is(reads, 1);
    t.is(pool.stats().calls.inFlight, 0);
  });
}

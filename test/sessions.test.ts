/**
 * Sessions: per-session connections to `scope: "session"` servers (state and headers isolated),
 * idle eviction, draining close, reference counting and `limits.maxSessions`. Every test runs once
 * per protocol era (issue 13), against the legacy fixture and the 2026-07-28 one: a session is the
 * pool's (its own connection, so its own stdio process), and session headers reach an HTTP server in
 * both eras.
 */
import test from "ava";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPool, parseConfig, type PoolConfigInput, type PoolEvent } from "../src/index.js";
import { code } from "./helpers/faults.js";
import { assertEra, FIXTURE_ERAS, isAlive, startHttpFixture, stdioServer, waitFor } from "./helpers/fixtures.js";

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

/** The pid of a session's connection to `server`, as stats() reports it. */
function sessionPid(pool: McpPool, server: string, sessionId: string): number | undefined {
  return pool.stats().servers[server]!.connections.find((c) => c.sessionId === sessionId)?.pid;
}

/** A pool whose events are recorded from the start (createPool would miss the first ones). */
async function openPool(input: PoolConfigInput): Promise<{ pool: McpPool; events: Array<[string, PoolEvent]> }> {
  const pool = new McpPool(parseConfig(input));
  const events: Array<[string, PoolEvent]> = [];
  for (const name of ["session:open", "session:close"]) pool.on(name, (e: PoolEvent) => events.push([name, e]));
  await pool.ready();
  return { pool, events };
}

/** The discovery connection that listed a session server's tools goes away on its own. */
async function noWorkers(pool: McpPool): Promise<void> {
  await waitFor(() => pool.stats().workers.active === 0, 10_000);
}

/** A session's first call waits for its connection to open: slow under load, and not what these tests are about. */
const PATIENT = { acquireTimeoutMs: 30_000 };

// Serial: every test starts server processes (~0.5 s of CPU each) and some measure idle timeouts;
// run together on a 2-core machine they starve each other's connects.

for (const era of FIXTURE_ERAS) {
  test.serial(`${era}: each session keeps its own state on its own server process of a session-scoped stdio server`, async (t) => {
    const pool = await createPool({ servers: { s: { ...stdioServer([], undefined, era), scope: "session" } }, limits: PATIENT });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const a = pool.session("a");
    const b = pool.session("b");
    for (let i = 0; i < 3; i++) await a.callTool("s__increment");
    await b.callTool("s__increment");
    // The same session reached through callTool's sessionId option is the same connection.
    t.is(text(await pool.callTool("s__get_count", {}, { sessionId: "a" })), "3");
    t.is(text(await b.callTool("s__get_count")), "1");

    const pidA = Number(text(await a.callTool("s__pid")));
    const pidB = Number(text(await b.callTool("s__pid")));
    t.not(pidA, pidB);
    t.is(sessionPid(pool, "s", "a"), pidA);
    t.is(sessionPid(pool, "s", "b"), pidB);
    const conns = pool.stats().servers.s!.connections;
    t.is(conns.length, 2);
    t.not(conns[0]!.id, conns[1]!.id);
    t.deepEqual(conns.map((c) => c.sessionId).sort(), ["a", "b"]);
    t.deepEqual(pool.stats().sessions, { active: 2, max: 200 });

    await pool.close();
    t.false(isAlive(pidA));
    t.false(isAlive(pidB));
  });

  test.serial(`${era}: each session's headers reach only its own connection to a session-scoped http server`, async (t) => {
    const fixture = await startHttpFixture("http", [], undefined, era);
    t.teardown(() => fixture.close());
    const pool = await createPool({ servers: { h: { url: fixture.url, scope: "session", headers: { "X-Base": "base" } } }, limits: PATIENT });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const a = pool.session("a", { headers: { Authorization: "Bearer token-a" } });
    const b = pool.session("b", { headers: { Authorization: "Bearer token-b" } });
    const seen = async (call: Promise<CallToolResult>) => JSON.parse(text(await call)) as Record<string, string | undefined>;

    const [ha, hb, hc] = await Promise.all([
      seen(a.callTool("h__headers")),
      seen(b.callTool("h__headers")),
      seen(pool.callTool("h__headers", {}, { sessionId: "c" })),
    ]);
    t.is(ha.authorization, "Bearer token-a");
    t.is(hb.authorization, "Bearer token-b");
    t.is(hc.authorization, undefined);
    // The server's own headers still apply under the session's.
    for (const h of [ha, hb, hc]) t.is(h["x-base"], "base");
    // Again, now that each connection is open: nothing leaked between them.
    t.is((await seen(a.callTool("h__headers"))).authorization, "Bearer token-a");
    t.is((await seen(b.callTool("h__headers"))).authorization, "Bearer token-b");

    const conns = pool.stats().servers.h!.connections;
    t.deepEqual(conns.map((c) => c.sessionId).sort(), ["a", "b", "c"]);
    t.is(new Set(conns.map((c) => c.id)).size, 3);
  });

  test.serial(`${era}: a call to a session-scoped server without a session is refused with INVALID_ARGUMENTS`, async (t) => {
    const pool = await createPool({ servers: { s: { ...stdioServer([], undefined, era), scope: "session" }, g: stdioServer([], undefined, era) }, limits: PATIENT });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    t.is(await code(pool.callTool("s__echo", { message: "hi" })), "INVALID_ARGUMENTS");
    // A shared server needs no session, and a session may call it too (through the shared replica).
    t.is(text(await pool.callTool("g__echo", { message: "hi" })), "hi");
    t.is(text(await pool.session("x").callTool("g__echo", { message: "via session" })), "via session");
    t.is(pool.stats().servers.g!.connections.length, 1);
    t.is(pool.stats().servers.g!.connections[0]!.sessionId, undefined);
  });

  test.serial(`${era}: an idle session closes after sessionIdleTimeoutMs and its server process ends`, async (t) => {
    const { pool, events } = await openPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { ...PATIENT, sessionIdleTimeoutMs: 300 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    await noWorkers(pool);
    const s = pool.session("idle");
    const pid = Number(text(await s.callTool("s__pid")));
    t.true(isAlive(pid));
    t.is(pool.stats().sessions.active, 1);
    t.is(pool.stats().workers.active, 1);

    await waitFor(() => events.some(([name, e]) => name === "session:close" && e.sessionId === "idle"), 5_000);
    await waitFor(() => !isAlive(pid), 5_000);
    t.is(pool.stats().sessions.active, 0);
    t.is(pool.stats().workers.active, 0);
    t.deepEqual(pool.stats().servers.s!.connections, []);
    t.deepEqual(
      events.map(([name, e]) => [name, e.sessionId]),
      [["session:open", "idle"], ["session:close", "idle"]],
    );

    // The session's id may be used again: it opens a fresh session with a fresh process.
    t.is(text(await s.callTool("s__get_count")), "0");
    t.not(sessionPid(pool, "s", "idle"), pid);
  });

  test.serial(`${era}: a session with a call in flight is not closed by the idle timeout`, async (t) => {
    const { pool, events } = await openPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { ...PATIENT, sessionIdleTimeoutMs: 500 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const s = pool.session("busy");
    await s.callTool("s__increment");
    const pid = sessionPid(pool, "s", "busy")!;
    // Several idle timeouts pass while this call runs.
    const result = await s.callTool("s__slow", { ms: 2_000 });
    t.is(text(result), "done after 2000ms");
    t.false(events.some(([name]) => name === "session:close"));
    t.true(isAlive(pid));
    // Still the same connection: the counter survived.
    t.is(text(await s.callTool("s__get_count")), "1");
    // Idle again: now it goes.
    await waitFor(() => events.some(([name, e]) => name === "session:close" && e.sessionId === "busy"), 5_000);
    await waitFor(() => !isAlive(pid), 5_000);
  });

  test.serial(`${era}: session.close() lets the session's calls finish, then ends its server process`, async (t) => {
    const { pool, events } = await openPool({ servers: { s: { ...stdioServer([], undefined, era), scope: "session" } }, limits: PATIENT });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const s = pool.session("closing");
    const pid = Number(text(await s.callTool("s__pid")));
    const call = s.callTool("s__slow", { ms: 600 });
    await waitFor(() => pool.stats().calls.inFlight === 1, 2_000);
    const closed = s.close();
    t.is(text(await call), "done after 600ms");
    await closed;
    t.false(isAlive(pid));
    t.is(pool.stats().sessions.active, 0);
    t.deepEqual(pool.stats().servers.s!.connections, []);
    t.deepEqual(events.filter(([name]) => name === "session:close").map(([, e]) => e.sessionId), ["closing"]);
    // Closing again is harmless.
    await s.close();
  });

  test.serial(`${era}: a new session beyond maxSessions evicts the least recently used idle session`, async (t) => {
    const { pool, events } = await openPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { ...PATIENT, maxSessions: 2 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const a = pool.session("a");
    const b = pool.session("b");
    const pidA = Number(text(await a.callTool("s__pid")));
    const pidB = Number(text(await b.callTool("s__pid")));
    await a.callTool("s__increment"); // a is now the most recently used
    await b.callTool("s__increment");
    t.deepEqual(pool.stats().sessions, { active: 2, max: 2 });

    await pool.session("c").callTool("s__increment");
    await waitFor(() => !isAlive(pidA), 5_000);
    t.true(isAlive(pidB));
    t.deepEqual(pool.stats().sessions, { active: 2, max: 2 });
    t.deepEqual(
      events.filter(([name]) => name === "session:close").map(([, e]) => e.sessionId),
      ["a"],
    );
    t.is(text(await b.callTool("s__get_count")), "1");
  });

  test.serial(`${era}: a new session beyond maxSessions is refused with SESSION_LIMIT while every session has calls in flight`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { ...PATIENT, maxSessions: 1 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const a = pool.session("a");
    await a.callTool("s__increment");
    const busy = a.callTool("s__slow", { ms: 1_000 });
    await waitFor(() => pool.stats().calls.inFlight === 1, 2_000);

    const started = Date.now();
    t.is(await code(pool.session("b").callTool("s__echo", { message: "b" })), "SESSION_LIMIT");
    t.is(await code(pool.callTool("s__echo", { message: "b" }, { sessionId: "b" })), "SESSION_LIMIT");
    t.true(Date.now() - started < 500, "refused at once, not after waiting");
    t.is(text(await busy), "done after 1000ms");

    // a is idle now, so b takes its place.
    t.is(text(await pool.session("b").callTool("s__echo", { message: "b" })), "b");
    t.deepEqual(pool.stats().sessions, { active: 1, max: 1 });
  });

  test.serial(`${era}: closing the pool closes every session once and ends their server processes`, async (t) => {
    const { pool, events } = await openPool({ servers: { s: { ...stdioServer([], undefined, era), scope: "session" } }, limits: PATIENT });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const pids = await Promise.all(["a", "b", "c"].map(async (id) => Number(text(await pool.session(id).callTool("s__pid")))));
    // One of them is closing already when the pool closes.
    const closing = pool.session("c").close();
    await pool.close();
    await closing;
    for (const pid of pids) t.false(isAlive(pid));
    const closes = events.filter(([name]) => name === "session:close").map(([, e]) => e.sessionId).sort();
    t.deepEqual(closes, ["a", "b", "c"]);
    t.is(pool.stats().workers.active, 0);
    t.is(await code(pool.session("d").callTool("s__echo", { message: "late" })), "POOL_CLOSED");
  });
}

/**
 * Streamable HTTP servers that behave as real ones do (issue 12, items 5-7), against the hand-written
 * fixture test/fixtures/http-quirks-server.ts, whose every quirk is exact and whose side is counted:
 * an answer stream closed after an event id and resumed (SEP-1699, the conformance scenario `sse-retry`),
 * a stale session answered with 400 after a restart, a server down for a few seconds, and requests of
 * calls that ended on our side.
 */
import test, { type ExecutionContext } from "ava";
import type { McpPool, PoolEvent, ServerConfigInput } from "../src/index.js";
import { startQuirksServer, type QuirksServer, type QuirksServerOptions } from "./fixtures/http-quirks-server.js";
import { waitFor } from "./helpers/fixtures.js";
import { openReadyPool, server, settle } from "./helpers/faults.js";

async function quirks(t: ExecutionContext, options?: QuirksServerOptions): Promise<QuirksServer> {
  const f = await startQuirksServer(options);
  t.teardown(() => f.close());
  return f;
}

function openPool(t: ExecutionContext, config: ServerConfigInput): Promise<McpPool> {
  return openReadyPool(t, { servers: { q: config } });
}

function open(f: QuirksServer, kind: string): number {
  return f.openRequests.get(kind) ?? 0;
}

// ---------------------------------------------------------------- item 5: resumable answer streams

test("a call whose answer stream the server closes after an event id gets its answer on the stream resumed with Last-Event-ID, after the server's retry delay", async (t) => {
  const retryMs = 300;
  const f = await quirks(t, { retryMs });
  const pool = await openPool(t, server({ url: f.url }));

  t.deepEqual(await settle(pool.callTool("q__resumable", {}, { timeoutMs: 8_000 })), { ok: true, text: "resumed" });
  t.is(f.closedStreams.length, 1);
  t.is(f.resumes.length, 1, "one GET resumed the stream");
  t.is(f.resumes[0]!.lastEventId, f.closedStreams[0]!.lastEventId, "from the last event id of the closed stream");
  // The server's `retry:` is honoured (50 ms of slack for timer granularity, as the conformance scenario allows).
  t.true(f.resumes[0]!.at - f.closedStreams[0]!.at >= retryMs - 50, `resumed ${f.resumes[0]!.at - f.closedStreams[0]!.at} ms after the close`);
  t.is(pool.stats().servers.q!.connections[0]!.restarts, 0, "the connection itself was never lost");
});

test("a call whose answer stream ends without an event id or an answer fails with CONNECTION_LOST at once, not at its deadline, and the connection serves on", async (t) => {
  const f = await quirks(t);
  const pool = await openPool(t, server({ url: f.url }));

  const started = Date.now();
  t.deepEqual(await settle(pool.callTool("q__cut", {}, { timeoutMs: 20_000 })), { ok: false, code: "CONNECTION_LOST" });
  t.true(Date.now() - started < 10_000, `settled after ${Date.now() - started} ms, long before its deadline`);
  t.is(f.resumes.length, 0, "nothing to resume from");
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "still here" })), { ok: true, text: "still here" });
  t.is(f.initializes, 1, "the session was not given up for one call's stream");
});

test("a call whose answer stream cannot be resumed (the server refuses the GET) fails with CONNECTION_LOST after a few attempts, not at its deadline", async (t) => {
  const f = await quirks(t);
  const pool = await openPool(t, server({ url: f.url, retry: "never" }));

  const started = Date.now();
  t.deepEqual(await settle(pool.callTool("q__resumable", { refuse: true }, { timeoutMs: 30_000 })), { ok: false, code: "CONNECTION_LOST" });
  t.true(Date.now() - started < 20_000, `settled after ${Date.now() - started} ms, long before its deadline`);
  t.true(f.resumes.length >= 1 && f.resumes.length <= 5, `${f.resumes.length} attempts to resume`);
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "next" })), { ok: true, text: "next" });
});

test("an answer stream that breaks off after an event id (the server went away mid-answer) fails the call with CONNECTION_LOST at once", async (t) => {
  const f = await quirks(t);
  const pool = await openPool(t, server({ url: f.url, retry: "never" }));
  const call = settle(pool.callTool("q__hang", { primed: true }, { timeoutMs: 30_000 }));
  await waitFor(() => open(f, "POST tools/call hang") === 1, 10_000, 10);

  const started = Date.now();
  const restarted = f.restart(0);
  t.deepEqual(await call, { ok: false, code: "CONNECTION_LOST" });
  t.true(Date.now() - started < 10_000, `settled after ${Date.now() - started} ms, long before its deadline`);
  await restarted;
  await waitFor(async () => (await settle(pool.callTool("q__echo", { message: "back" }, { timeoutMs: 5_000 }))).ok, 20_000, 100);
});

// ---------------------------------------------------------------- item 6: stale sessions, restarts

test("a server restarted on its port that answers the stale session with HTTP 400 gets a fresh initialize at once, connection:lost is emitted, and a read-only call is retried and succeeds", async (t) => {
  const f = await quirks(t, { staleStatus: 400 });
  const pool = await openPool(t, server({ url: f.url }));
  const lost: PoolEvent[] = [];
  pool.on("connection:lost", (event: PoolEvent) => lost.push(event));
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "before" })), { ok: true, text: "before" });

  await f.restart(200);
  const started = Date.now();
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "after" }, { timeoutMs: 20_000 })), { ok: true, text: "after" });
  t.true(Date.now() - started < 10_000, `answered after ${Date.now() - started} ms`);
  t.true(f.staleAnswers >= 1, "the call met the 400");
  t.is(f.initializes, 2, "one initialize at start, one after the restart");
  t.is(lost.length, 1);
  t.is(pool.stats().servers.q!.connections[0]!.restarts, 1);
});

test("a call that is not safe to retry and meets a stale session (HTTP 400) fails with CONNECTION_LOST, and the next call runs on a fresh session", async (t) => {
  const f = await quirks(t, { staleStatus: 400 });
  const pool = await openPool(t, server({ url: f.url }));
  await f.restart(0);

  t.deepEqual(await settle(pool.callTool("q__increment", {}, { timeoutMs: 20_000 })), { ok: false, code: "CONNECTION_LOST" });
  t.is(f.calls.get("increment") ?? 0, 0, "the server never ran it");
  t.is((await settle(pool.callTool("q__increment", {}, { timeoutMs: 20_000 }))).ok, true);
  t.is(f.initializes, 2);
});

test("a keepalive ping that meets a stale session (HTTP 400) reopens the connection at once, without waiting for missed pings", async (t) => {
  const f = await quirks(t, { staleStatus: 400 });
  // So many pings may fail that only the ping's answer itself can explain the prompt reopen.
  const pool = await openPool(t, server({ url: f.url, keepalive: { intervalMs: 200, timeoutMs: 5_000, failures: 1_000 } }));
  const lost: PoolEvent[] = [];
  pool.on("connection:lost", (event: PoolEvent) => lost.push(event));

  await f.restart(0);
  await waitFor(() => f.initializes === 2 && pool.stats().servers.q!.state === "ready", 10_000, 25);
  t.is(lost.length, 1);
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "fresh" })), { ok: true, text: "fresh" });
});

test("with the default reconnect policy a connection rides out a server that is down for three seconds: it never becomes failed, and a read-only call made meanwhile succeeds", async (t) => {
  const f = await quirks(t);
  // No `reconnect`: the defaults are what this is about.
  const pool = await openPool(t, { url: f.url, connectTimeoutMs: 30_000, keepalive: { intervalMs: 0 } });
  const failed: PoolEvent[] = [];
  pool.on("connection:failed", (event: PoolEvent) => failed.push(event));
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "before" })), { ok: true, text: "before" });

  const restarted = f.restart(3_000);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "during" }, { timeoutMs: 25_000 })), { ok: true, text: "during" });
  await restarted;
  t.deepEqual(failed, []);
  t.is(pool.stats().servers.q!.state, "ready");
});

// ---------------------------------------------------------------- item 7: requests end with their calls

test("calls that time out or are aborted close their HTTP requests: the server's open requests and sockets drop back", async (t) => {
  const f = await quirks(t);
  const pool = await openPool(t, server({ url: f.url }));
  const n = 12;
  // Half of each kind with a priming event: their streams are resumable, and must not be resumed.
  const abort = new AbortController();
  const aborted = Array.from({ length: n }, (_, i) =>
    settle(pool.callTool("q__hang", { primed: i % 2 === 0 }, { timeoutMs: 60_000, signal: abort.signal })),
  );
  // Every one of them reached the server and holds a socket there before it is aborted.
  await waitFor(() => open(f, "POST tools/call hang") === n, 30_000, 10);
  // And so does every call that times out, before its deadline: one that ended before it was sent would
  // close nothing. Their deadline leaves the wait room on a loaded machine; the wait fails if it passes first.
  const timeoutMs = 8_000;
  const timedOut = Array.from({ length: n }, (_, i) => settle(pool.callTool("q__hang", { primed: i % 2 === 1 }, { timeoutMs })));
  await waitFor(() => open(f, "POST tools/call hang") === 2 * n, timeoutMs, 10);
  abort.abort();
  t.deepEqual(await Promise.all(aborted), Array.from({ length: n }, () => ({ ok: false, code: "ABORTED" })));
  t.deepEqual(await Promise.all(timedOut), Array.from({ length: n }, () => ({ ok: false, code: "TIMEOUT" })));

  await waitFor(() => open(f, "POST tools/call hang") === 0, 10_000, 25).catch(() => {});
  t.is(open(f, "POST tools/call hang"), 0, "every request of an ended call was closed");
  // Idle keep-alive sockets close after 500 ms on this server; what a request holds would stay.
  await waitFor(() => f.openSockets <= 2, 10_000, 25).catch(() => {});
  t.true(f.openSockets <= 2, `${f.openSockets} sockets still open`);
  t.is(f.resumes.length, 0, "no stream of an ended call was resumed");
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "fine" })), { ok: true, text: "fine" });
});

test("calls with resumable answer streams that all end at once are not resumed, however many: the server's open requests drop back", async (t) => {
  const f = await quirks(t);
  // More calls ending within one `retry:` delay (300 ms here) than a memory of ended streams capped by count held (64).
  const n = 100;
  const pool = await openReadyPool(t, { servers: { q: server({ url: f.url }) }, limits: { maxInFlightPerConnection: n } });
  const abort = new AbortController();
  const calls = Array.from({ length: n }, () => settle(pool.callTool("q__hang", { primed: true }, { timeoutMs: 60_000, signal: abort.signal })));
  await waitFor(() => open(f, "POST tools/call hang") === n, 30_000, 10);
  // Their priming events reach the SDK a moment after the requests reach the server.
  await new Promise((resolve) => setTimeout(resolve, 300));
  abort.abort();
  t.deepEqual(await Promise.all(calls), Array.from({ length: n }, () => ({ ok: false, code: "ABORTED" })));

  // The SDK asks to resume each aborted stream after the server's `retry:`; wait well past it.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  await waitFor(() => open(f, "POST tools/call hang") === 0, 10_000, 25).catch(() => {});
  t.is(open(f, "POST tools/call hang"), 0, "every request of an ended call was closed");
  t.is(f.resumes.length, 0, "no stream of an ended call was resumed");
  t.is(open(f, "GET resume hang"), 0, "no resumed stream is held open for a call nobody waits for");
  t.deepEqual(await settle(pool.callTool("q__echo", { message: "fine" })), { ok: true, text: "fine" });
});

/**
 * Pool limits: the bounded FIFO queue (maxQueue, acquireTimeoutMs, deadlines, aborts), shared
 * replicas (least in flight, scale up under load, scale down when idle) and the worker cap.
 * Every test with a server runs once per protocol era (issue 13): against the legacy fixture and the 2026-07-28 one.
 */
import test, { type ExecutionContext } from "ava";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPool, McpPoolError, parseConfig, type LimitsInput, type PoolStats } from "../src/index.js";
import { assertEra, FIXTURE_ERAS, isAlive, stdioServer, waitFor, type FixtureEra } from "./helpers/fixtures.js";

// Serial: every test starts server processes (~0.5 s of CPU each) and several measure how long a
// refusal takes; run together on a 2-core machine they starve each other's connects.

/**
 * A pool over one connection of the `era` fixture with `limits`, whose one call slot is taken by a `slow` call
 * of `busyMs` (in flight when this resolves): what the queue tests start from.
 */
async function busyPool(t: ExecutionContext, era: FixtureEra, limits: LimitsInput, busyMs: number): Promise<{ pool: McpPool; busy: Promise<CallToolResult> }> {
  const pool = await createPool({ servers: { s: stdioServer([], undefined, era) }, limits });
  t.teardown(() => pool.close());
  assertEra(t, pool, era);
  const busy = pool.callTool("s__slow", { ms: busyMs });
  await waitFor(() => pool.stats().calls.inFlight === 1, 2_000);
  return { pool, busy };
}

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

/** Settles with the error code (or "ok") and when it settled, relative to `since`. */
async function outcome(promise: Promise<unknown>, since = Date.now()): Promise<{ code: string; ms: number }> {
  try {
    await promise;
    return { code: "ok", ms: Date.now() - since };
  } catch (error) {
    return { code: error instanceof McpPoolError ? error.code : `not an McpPoolError: ${String(error)}`, ms: Date.now() - since };
  }
}

/** Samples stats() every few ms until stopped; returns every sample. */
function sampler(pool: McpPool, everyMs = 5): { stop(): PoolStats[] } {
  const samples: PoolStats[] = [];
  const timer = setInterval(() => samples.push(pool.stats()), everyMs);
  return {
    stop() {
      clearInterval(timer);
      samples.push(pool.stats());
      return samples;
    },
  };
}

function connectionCount(stats: PoolStats): number {
  let n = 0;
  for (const server of Object.values(stats.servers)) n += server.connections.length;
  return n;
}

test("connections.idleTimeoutMs defaults to 30 s and is validated", (t) => {
  const config = parseConfig({ servers: { s: stdioServer() } });
  t.deepEqual(config.servers.s!.connections, { min: 1, max: 1, idleTimeoutMs: 30_000 });
  const set = parseConfig({ servers: { s: { ...stdioServer(), connections: { min: 1, max: 3, idleTimeoutMs: 250 } } } });
  t.is(set.servers.s!.connections.idleTimeoutMs, 250);
  const error = t.throws(() => parseConfig({ servers: { s: { ...stdioServer(), connections: { idleTimeoutMs: 0 } } } }));
  t.is((error as McpPoolError).code, "CONFIG_INVALID");
});

// Admission (queue, acquire timeout, balancing, the worker cap, eviction) is the main thread's, the same
// whatever the server's era: those run once. What opens, closes or reopens connections runs in both eras.
for (const era of FIXTURE_ERAS) {
  if (era === "legacy") test.serial(`${era}: a call beyond maxQueue is refused at once with POOL_EXHAUSTED and queued calls run in FIFO order`, async (t) => {
    const { pool, busy } = await busyPool(t, era, { maxQueue: 2, maxInFlightPerConnection: 1 }, 1_500);
    const order: string[] = [];
    const first = pool.callTool("s__echo", { message: "first" }).then((r) => order.push(text(r)));
    const second = pool.callTool("s__echo", { message: "second" }).then((r) => order.push(text(r)));
    t.is(pool.stats().calls.queued, 2);

    const refused = await outcome(pool.callTool("s__echo", { message: "third" }));
    t.is(refused.code, "POOL_EXHAUSTED");
    t.true(refused.ms < 500, `refused after ${refused.ms} ms, not at once`);
    t.is(pool.stats().calls.queued, 2);

    await Promise.all([busy, first, second]);
    t.deepEqual(order, ["first", "second"]);
    t.is(pool.stats().calls.queued, 0);
    t.like(pool.stats().calls, { ok: 3, failed: 1, inFlight: 0 });
  });

  if (era === "legacy") test.serial(`${era}: a queued call is refused with POOL_EXHAUSTED once acquireTimeoutMs or its own earlier deadline passes`, async (t) => {
    const { pool, busy } = await busyPool(t, era, { acquireTimeoutMs: 600, maxInFlightPerConnection: 1 }, 2_500);
    const since = Date.now();
    const [byAcquire, byDeadline] = await Promise.all([
      outcome(pool.callTool("s__echo", { message: "late" }), since),
      outcome(pool.callTool("s__echo", { message: "later" }, { timeoutMs: 200 }), since),
    ]);
    t.is(byAcquire.code, "POOL_EXHAUSTED");
    t.is(byDeadline.code, "POOL_EXHAUSTED");
    t.true(byDeadline.ms >= 150 && byDeadline.ms < byAcquire.ms, `deadline: refused after ${byDeadline.ms} ms`);
    t.true(byAcquire.ms >= 550 && byAcquire.ms < 2_000, `acquireTimeoutMs: refused after ${byAcquire.ms} ms`);
    t.is(pool.stats().calls.queued, 0);
    t.is(text(await busy), "done after 2500ms");
  });

  if (era === "legacy") test.serial(`${era}: an aborted queued call leaves the queue at once with ABORTED`, async (t) => {
    const { pool, busy } = await busyPool(t, era, { maxInFlightPerConnection: 1 }, 1_500);
    const controller = new AbortController();
    const queued = pool.callTool("s__echo", { message: "never" }, { signal: controller.signal });
    const after = pool.callTool("s__echo", { message: "after" });
    t.is(pool.stats().calls.queued, 2);
    const since = Date.now();
    controller.abort();
    t.is(pool.stats().calls.queued, 1);
    const aborted = await outcome(queued, since);
    t.is(aborted.code, "ABORTED");
    t.true(aborted.ms < 500, `settled after ${aborted.ms} ms`);
    t.is(text(await after), "after");
    await busy;
  });

  if (era === "legacy") test.serial(`${era}: calls go to the ready replica with the fewest calls in flight`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), connections: { min: 2, max: 2 } } },
      limits: { maxInFlightPerConnection: 4 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    t.is(pool.stats().servers.s!.connections.filter((c) => c.state === "ready").length, 2);
    const calls = Array.from({ length: 4 }, () => pool.callTool("s__slow", { ms: 800 }));
    const inFlight = pool.stats().servers.s!.connections.map((c) => c.inFlight);
    t.deepEqual(inFlight, [2, 2]);
    t.is(pool.stats().calls.queued, 0);
    await Promise.all(calls);
    t.deepEqual(pool.stats().servers.s!.connections.map((c) => c.calls), [2, 2]);
  });

  test.serial(`${era}: a shared server opens replicas up to connections.max under load and closes idle ones down to min`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), connections: { min: 1, max: 3, idleTimeoutMs: 300 } } },
      limits: { maxInFlightPerConnection: 1, acquireTimeoutMs: 30_000 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const sampling = sampler(pool);
    const calls = Array.from({ length: 5 }, () => pool.callTool("s__slow", { ms: 2_500 }));
    const results = await Promise.all(calls.map((c) => outcome(c)));
    const samples = sampling.stop();
    t.deepEqual(results.map((r) => r.code), Array(5).fill("ok"));

    const most = Math.max(...samples.map((s) => s.servers.s!.connections.length));
    t.is(most, 3, "scaled up to connections.max, never beyond");
    for (const s of samples) {
      for (const c of s.servers.s!.connections) t.true(c.inFlight <= 1, "maxInFlightPerConnection held");
      t.true(s.workers.active <= 3);
    }
    const pids = new Set<number>();
    for (const s of samples) for (const c of s.servers.s!.connections) if (c.pid !== undefined) pids.add(c.pid);
    t.is(pids.size, 3);

    // Idle now: the surplus replicas close, min stays.
    await waitFor(() => pool.stats().servers.s!.connections.length === 1, 10_000);
    await waitFor(() => [...pids].filter((pid) => isAlive(pid)).length === 1, 5_000);
    const kept = pool.stats().servers.s!.connections[0]!.pid!;
    t.true(pids.has(kept) && isAlive(kept));
    t.is(pool.stats().workers.active, 1);
    t.is(text(await pool.callTool("s__echo", { message: "still serving" })), "still serving");
  });

  if (era === "legacy") test.serial(`${era}: the worker cap is never exceeded under a burst of sessions and every call completes`, async (t) => {
    const pool = await createPool({
      servers: { shared: stdioServer([], undefined, era), s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { maxWorkers: 3, acquireTimeoutMs: 30_000 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const sampling = sampler(pool);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      const session = pool.session(`burst-${i}`);
      calls.push(session.callTool("s__slow", { ms: 100 }), session.callTool("shared__echo", { message: String(i) }));
    }
    const results = await Promise.all(calls.map((c) => outcome(c)));
    const samples = sampling.stop();
    t.deepEqual(results.map((r) => r.code), Array(calls.length).fill("ok"));
    const most = Math.max(...samples.map((s) => s.workers.active));
    t.log(`samples: ${samples.length}, most workers active: ${most}, most queued for a worker: ${Math.max(...samples.map((s) => s.workers.queued))}`);
    t.true(most <= 3, `workers.active reached ${most}`);
    t.true(samples.every((s) => connectionCount(s) <= 3));
    t.true(samples.every((s) => s.workers.max === 3));
    t.true(samples.some((s) => s.workers.queued > 0), "connections waited for a worker");
    t.is(pool.stats().workers.queued, 0);
    t.is(pool.stats().servers.shared!.connections.length, 1);
  });

  test.serial(`${era}: at the worker cap, a new session's connection evicts the least recently used idle session connection`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { maxWorkers: 2, minIdleBeforeEvictionMs: 0 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    await waitFor(() => pool.stats().workers.active === 0, 10_000);
    const pidA = Number(text(await pool.session("a").callTool("s__pid")));
    const pidB = Number(text(await pool.session("b").callTool("s__pid")));
    await pool.session("b").callTool("s__increment");
    t.is(pool.stats().workers.active, 2);

    t.is(text(await pool.session("c").callTool("s__echo", { message: "c" })), "c");
    await waitFor(() => !isAlive(pidA), 5_000);
    t.true(isAlive(pidB));
    t.is(pool.stats().workers.active, 2);
    // The session itself stays open; only its connection went. b kept its state.
    t.is(pool.stats().sessions.active, 3);
    t.is(text(await pool.session("b").callTool("s__get_count")), "1");
  });

  test.serial(`${era}: a session whose idle connection was evicted at the worker cap gets a new connection on its next call`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { maxWorkers: 1, acquireTimeoutMs: 30_000, minIdleBeforeEvictionMs: 0 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    await waitFor(() => pool.stats().workers.active === 0, 10_000);
    const a = pool.session("a");
    t.is(text(await a.callTool("s__increment")), "1");
    const pidA = pool.stats().servers.s!.connections[0]!.pid!;
    // b needs the only worker: a's idle connection is evicted at once and is still closing when a calls again.
    const b = pool.session("b").callTool("s__echo", { message: "b" });
    const again = pool.session("a").callTool("s__get_count");
    const [bOutcome, againOutcome] = await Promise.all([outcome(b), again.then(text, (e: McpPoolError) => e.code)]);
    t.is(bOutcome.code, "ok");
    t.is(againOutcome, "0", "a's next call ran on a fresh connection");
    t.false(isAlive(pidA));
    t.is(pool.stats().workers.active, 1);
  });

  if (era === "legacy") test.serial(`${era}: at the worker cap, a session connection used within minIdleBeforeEvictionMs is not evicted; the new session waits until it has been idle that long`, async (t) => {
    const minIdle = 1_500;
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { maxWorkers: 1, acquireTimeoutMs: 30_000, minIdleBeforeEvictionMs: minIdle },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    await waitFor(() => pool.stats().workers.active === 0, 10_000);
    const a = pool.session("a");
    await a.callTool("s__increment");
    const lastUse = Date.now();
    const waiting = outcome(pool.session("b").callTool("s__echo", { message: "b" }), lastUse);
    // Calls in quick succession keep a's connection and its state while b waits.
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 300));
      t.is(text(await a.callTool("s__get_count")), "1");
    }
    const lastA = Date.now() - lastUse;
    t.is(pool.stats().workers.queued, 1);
    const b = await waiting;
    t.is(b.code, "ok");
    t.true(b.ms >= lastA + minIdle - 100, `b got a's worker ${b.ms} ms after a's first call; a last called at ${lastA} ms`);
    t.is(pool.stats().workers.active, 1);
  });

  if (era === "legacy") test.serial(`${era}: at the worker cap, a session connection with a call in flight is not evicted; the new one waits for it`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { maxWorkers: 1, acquireTimeoutMs: 30_000, minIdleBeforeEvictionMs: 0 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    await waitFor(() => pool.stats().workers.active === 0, 10_000);
    const a = pool.session("a");
    await a.callTool("s__increment");
    const busy = a.callTool("s__slow", { ms: 1_000 });
    await waitFor(() => pool.stats().calls.inFlight === 1, 2_000);
    const since = Date.now();
    const waiting = pool.session("b").callTool("s__echo", { message: "b" });
    await waitFor(() => pool.stats().workers.queued === 1, 2_000);
    t.is(pool.stats().workers.active, 1);

    const [busyOutcome, waitingOutcome] = await Promise.all([outcome(busy, since), outcome(waiting, since)]);
    t.is(busyOutcome.code, "ok");
    t.is(waitingOutcome.code, "ok");
    t.true(waitingOutcome.ms >= busyOutcome.ms, "b got its worker only after a's call finished");
    t.true(waitingOutcome.ms < 15_000, `b waited ${waitingOutcome.ms} ms`);
    t.is(pool.stats().workers.active, 1);
    t.is(pool.stats().workers.queued, 0);
  });

  if (era === "legacy") test.serial(`${era}: at the worker cap with nothing to evict, a call waits and is refused with POOL_EXHAUSTED at its deadline`, async (t) => {
    const pool = await createPool({
      servers: { s: { ...stdioServer([], undefined, era), scope: "session" } },
      limits: { maxWorkers: 1, acquireTimeoutMs: 30_000 },
    });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    await waitFor(() => pool.stats().workers.active === 0, 10_000);
    const a = pool.session("a");
    await a.callTool("s__increment");
    const busy = a.callTool("s__slow", { ms: 1_500 });
    await waitFor(() => pool.stats().calls.inFlight === 1, 2_000);
    const refused = await outcome(pool.session("b").callTool("s__echo", { message: "b" }, { timeoutMs: 400 }));
    t.is(refused.code, "POOL_EXHAUSTED");
    t.true(refused.ms >= 350 && refused.ms < 1_500, `refused after ${refused.ms} ms`);
    // Its request for a worker went with it.
    t.is(pool.stats().workers.queued, 0);
    t.is(text(await busy), "done after 1500ms");
    // a kept its connection throughout.
    t.is(text(await a.callTool("s__get_count")), "1");
    t.is(pool.stats().workers.queued, 0);
  });
}

/**
 * Fault tolerance when a worker thread dies (issue 3, items 3, 4, 5, 7): the main thread notices,
 * reaps the dead worker's server, settles its calls, and replaces the connection in a fresh worker.
 * Workers are killed the way a server can kill one: a message far larger than `limits.workerHeapMb`
 * (with `maxMessageMb` large enough not to refuse it first). Every test runs once per protocol era
 * (issue 13): against the legacy fixture and the 2026-07-28 one.
 */
import test, { type ExecutionContext } from "ava";
import { rmSync, writeFileSync } from "node:fs";
import { McpPool, type PoolConfigInput, type ServerConfigInput } from "../src/index.js";
import { assertEra, FIXTURE_ERAS, fixtureServer, isAlive, readEvents, stdioServer, tmpFile, waitFor, type FixtureEra } from "./helpers/fixtures.js";
import { connectionOf, openReadyPool, server, settle, testSlots, textOf, type Settled } from "./helpers/faults.js";

/** Small worker heaps, and no message-size limit in the way: `huge` then kills the worker. */
const LIMITS = { workerHeapMb: 32, maxMessageMb: 1024 };
/** Far beyond what a 32 MB heap can decode. */
const HUGE_BYTES = 64_000_000;

const slot = testSlots(3);

/** A ready pool whose every server speaks `era` (checked, so a modern test cannot pass in the legacy era). */
async function openPool(t: ExecutionContext, era: FixtureEra, input: PoolConfigInput): Promise<McpPool> {
  const pool = await openReadyPool(t, input, slot);
  assertEra(t, pool, era);
  return pool;
}

function readyAgain(pool: McpPool, server: string, notThread: number | undefined): Promise<void> {
  return waitFor(() => {
    const c = pool.stats().servers[server]!.connections[0];
    return c?.state === "ready" && c.pid !== undefined && c.threadId !== notThread;
  }, 30_000);
}

interface CrashEvent {
  server?: string;
  connectionId?: string;
  pid?: number;
  error?: unknown;
}

/**
 * While `block` exists, a "server" that writes one line far larger than the worker's heap can decode
 * (killing every worker that connects to it), then sleeps. Otherwise the fixture server.
 */
function workerKiller(era: FixtureEra, block: string, events: string): ServerConfigInput {
  const script = [
    'if [ -e "$0" ]; then',
    '  echo "{\\"event\\":\\"start\\",\\"pid\\":$$}" >> "$FIXTURE_EVENTS"',
    `  head -c ${HUGE_BYTES} /dev/zero | tr "\\\\0" x; echo; exec sleep 600`,
    "fi",
    'exec "$1" "$2" stdio',
  ].join("\n");
  return { command: "/bin/sh", args: ["-c", script, block, process.execPath, fixtureServer(era)], env: { FIXTURE_EVENTS: events } };
}

for (const era of FIXTURE_ERAS) {
  test(`${era}: a worker killed by its heap limit is replaced in a fresh thread; its server group is reaped and its calls end with CONNECTION_LOST`, async (t) => {
    const events = tmpFile("faults-worker");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, {
      servers: {
        a: server({ ...stdioServer([], { FIXTURE_EVENTS: events }, era), retry: "never" }),
        b: server(stdioServer([], undefined, era)),
      },
      limits: LIMITS,
    });
    const crashes: CrashEvent[] = [];
    const lost: CrashEvent[] = [];
    pool.on("worker:crash", (e: CrashEvent) => crashes.push(e));
    pool.on("connection:lost", (e: CrashEvent) => lost.push(e));
    const before = connectionOf(pool, "a");
    const other = connectionOf(pool, "b");
    const grandchild = Number(textOf(await pool.callTool("a__spawn_child")));
    t.true(isAlive(grandchild));

    const slow = settle(pool.callTool("a__slow", { ms: 50_000 }, { timeoutMs: 55_000 }));
    await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "slow"), 20_000, 10);
    const huge = await settle(pool.callTool("a__huge", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 }));

    t.deepEqual(huge, { ok: false, code: "CONNECTION_LOST" });
    t.deepEqual(await slow, { ok: false, code: "CONNECTION_LOST" });
    t.is(crashes.length, 1);
    t.is(crashes[0]!.server, "a");
    t.is(crashes[0]!.connectionId, before.id);
    t.is(crashes[0]!.pid, before.pid);
    t.true(crashes[0]!.error instanceof Error);
    t.is(lost.length, 1);

    // The dead worker's server, and what that server started, are reaped from the main thread.
    await waitFor(() => !isAlive(before.pid!) && !isAlive(grandchild), 10_000);
    await readyAgain(pool, "a", before.threadId);
    const after = connectionOf(pool, "a");
    t.not(after.threadId, before.threadId);
    t.not(after.pid, before.pid);
    t.is(after.id, before.id);
    t.is(after.restarts, 1);
    assertEra(t, pool, era, ["a"]);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "replaced" })), { ok: true, text: "replaced" });

    const stats = pool.stats();
    t.is(stats.crashes.worker, 1);
    t.is(stats.crashes.server, 0);
    // The other server never noticed.
    t.is(connectionOf(pool, "b").threadId, other.threadId);
    t.is(connectionOf(pool, "b").restarts, 0);
    t.deepEqual(await settle(pool.callTool("b__echo", { message: "untouched" })), { ok: true, text: "untouched" });
  });

  // The pool's side of a worker's death is the same whatever the server's era: once, in the legacy era.
  if (era === "legacy") test(`${era}: a read-only call lost to a worker crash is retried once on the replacement and succeeds; the unannotated call that killed the worker is not retried`, async (t) => {
    const events = tmpFile("faults-worker-retry");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], { FIXTURE_EVENTS: events }, era)) }, limits: LIMITS });
    // Its first attempt waits for a file that appears only after the crash: it is in flight when the worker dies.
    const gate = tmpFile("faults-worker-gate");
    t.teardown(() => rmSync(gate, { force: true }));
    const waiting = settle(pool.callTool("a__wait_file", { path: gate }, { timeoutMs: 55_000 }));
    await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "wait_file"), 20_000, 10);
    const killer = await settle(pool.callTool("a__huge_unsafe", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 }));
    t.deepEqual(killer, { ok: false, code: "CONNECTION_LOST" });
    writeFileSync(gate, "");
    t.deepEqual(await waiting, { ok: true, text: gate });
    // Once on the dead worker's server, once on the replacement's.
    const calls = readEvents(events).filter((e) => e.event === "call" && e.tool === "wait_file");
    t.is(calls.length, 2);
    t.is(new Set(calls.map((e) => e.pid)).size, 2);
    t.is(readEvents(events).filter((e) => e.event === "call" && e.tool === "huge_unsafe").length, 1);
    t.is(pool.stats().crashes.worker, 1);
  });

  // The pool's side of a worker's death is the same whatever the server's era: once, in the legacy era.
  if (era === "legacy") test(`${era}: a read-only call lost to a worker crash is not retried once its caller aborted it from the worker:crash handler`, async (t) => {
    const events = tmpFile("faults-worker-abort-retry");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], { FIXTURE_EVENTS: events }, era)) }, limits: LIMITS });
    const gate = tmpFile("faults-worker-abort-gate");
    t.teardown(() => rmSync(gate, { force: true }));
    const controller = new AbortController();
    const waiting = settle(pool.callTool("a__wait_file", { path: gate }, { timeoutMs: 55_000, signal: controller.signal }));
    await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "wait_file"), 20_000, 10);
    pool.once("worker:crash", () => controller.abort());
    t.deepEqual(await settle(pool.callTool("a__huge_unsafe", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 })), { ok: false, code: "CONNECTION_LOST" });
    writeFileSync(gate, "");
    t.deepEqual(await waiting, { ok: false, code: "ABORTED" });
    await readyAgain(pool, "a", undefined);
    t.is(readEvents(events).filter((e) => e.event === "call" && e.tool === "wait_file").length, 1, "not sent again");
  });

  // The pool's side of a worker's death is the same whatever the server's era: once, in the legacy era.
  if (era === "legacy") test(`${era}: a read-only call that kills its worker is retried once, kills the replacement too, and then fails with CONNECTION_LOST`, async (t) => {
    const events = tmpFile("faults-worker-poison");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], { FIXTURE_EVENTS: events }, era)) }, limits: LIMITS });
    const huge = await settle(pool.callTool("a__huge", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 }));
    t.deepEqual(huge, { ok: false, code: "CONNECTION_LOST" });
    t.is(readEvents(events).filter((e) => e.event === "call" && e.tool === "huge").length, 2);
    t.is(pool.stats().crashes.worker, 2);
    await waitFor(() => connectionOf(pool, "a").state === "ready", 30_000);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "third" })), { ok: true, text: "third" });
  });

  test(`${era}: after a worker is replaced the tools are listed again, tools:changed fires, and calls made meanwhile wait for it`, async (t) => {
    const pool = await openPool(t, era, { servers: { a: server({ ...stdioServer([], undefined, era), retry: "never" }) }, limits: LIMITS });
    const changes: unknown[] = [];
    pool.on("tools:changed", (e) => changes.push(e));
    await pool.callTool("a__add_tool", { name: "extra" });
    await waitFor(() => changes.length === 1, 20_000);
    t.true((await pool.listTools()).some((tool) => tool.name === "a__extra"));
    const thread = connectionOf(pool, "a").threadId;

    let waiting: Promise<Settled[]> | undefined;
    pool.once("worker:crash", () => {
      // Made while the replacement starts: they wait for it instead of failing.
      waiting = Promise.all(Array.from({ length: 3 }, (_, i) => settle(pool.callTool("a__echo", { message: `w${i}` }, { timeoutMs: 50_000 }))));
    });
    t.deepEqual(await settle(pool.callTool("a__huge", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 })), { ok: false, code: "CONNECTION_LOST" });
    t.truthy(waiting);
    t.deepEqual(await waiting, [0, 1, 2].map((i) => ({ ok: true, text: `w${i}` })));
    t.not(connectionOf(pool, "a").threadId, thread);

    // The fresh server does not have the added tool, and the catalog says so.
    await waitFor(() => changes.length === 2, 20_000);
    const names = (await pool.listTools()).map((tool) => tool.name);
    t.false(names.includes("a__extra"));
    t.true(names.includes("a__huge"));
  });

  // The pool's side of a worker's death is the same whatever the server's era: once, in the legacy era.
  if (era === "legacy") test(`${era}: a server that kills every worker costs a bounded number of workers, ends failed with SERVER_UNAVAILABLE, and a probe brings it back`, async (t) => {
    const events = tmpFile("faults-worker-loop");
    const block = tmpFile("faults-worker-block");
    t.teardown(() => {
      rmSync(events, { force: true });
      rmSync(block, { force: true });
    });
    const reconnect = { maxAttempts: 2, initialDelayMs: 20, maxDelayMs: 50, probeIntervalMs: 1_500 };
    const pool = await openPool(t, era, { servers: { a: server({ ...workerKiller(era, block, events), reconnect }) }, limits: LIMITS });
    const crashes: number[] = [];
    pool.on("worker:crash", () => crashes.push(Date.now()));
    const first = connectionOf(pool, "a");

    writeFileSync(block, "");
    process.kill(first.pid!, "SIGKILL");
    // Four worker starts, each with its server start and a heap death: on a loaded machine that takes a while.
    await waitFor(() => connectionOf(pool, "a").state === "failed", 45_000, 10);
    // The host's own reopen after the kill, then one immediate replacement and maxAttempts more: each killed its worker.
    t.is(crashes.length, 1 + 1 + reconnect.maxAttempts);
    const started = Date.now();
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "x" }, { timeoutMs: 20_000 })), { ok: false, code: "SERVER_UNAVAILABLE" });
    t.true(Date.now() - started < 5_000, "a failed connection refuses at once");

    // Probing: one worker per probe interval, not a crash loop.
    const windowMs = 3_000;
    const atWindow = crashes.length;
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const probes = crashes.length - atWindow;
    t.true(probes <= Math.ceil(windowMs / reconnect.probeIntervalMs) + 1, `${probes} workers died in ${windowMs} ms`);
    t.is(pool.stats().crashes.worker, crashes.length);

    // Every server those workers started was reaped.
    const pids = readEvents(events).filter((e) => e.event === "start").map((e) => e.pid as number);
    t.true(pids.length >= 1 + 1 + reconnect.maxAttempts);
    await waitFor(() => pids.slice(0, -1).every((pid) => !isAlive(pid)), 10_000);

    rmSync(block);
    await waitFor(() => connectionOf(pool, "a").state === "ready", 30_000);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "probed" })), { ok: true, text: "probed" });
    await pool.close();
    for (const pid of readEvents(events).map((e) => e.pid as number)) t.false(isAlive(pid), `pid ${pid}`);
  });

  test(`${era}: close() right after a worker crash leaves no process behind, grandchildren included, even one that ignores SIGTERM`, async (t) => {
    const pool = await openPool(t, era, { servers: { a: server({ ...stdioServer([], undefined, era), retry: "never" }) }, limits: LIMITS });
    const first = connectionOf(pool, "a");
    const firstChild = Number(textOf(await pool.callTool("a__spawn_child", { ignoreTerm: true })));
    const crashed = new Promise<void>((resolve) => pool.once("worker:crash", () => resolve()));
    void settle(pool.callTool("a__huge", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 }));
    await crashed;
    // The replacement is on its way (or just ready), and the dead worker's group is still being reaped
    // (SIGTERM, which the grandchild ignores, then SIGKILL), while the pool closes: close() waits for both.
    await pool.close();
    t.deepEqual([first.pid!, firstChild].filter(isAlive), [], "nothing of the dead worker's group runs once close() resolved");
    const conn = pool.stats().servers.a!.connections[0];
    if (conn?.pid !== undefined) t.false(isAlive(conn.pid));
    t.is(pool.stats().servers.a!.state, "closed");
    t.is(pool.stats().workers.active, 0);
  });

  // The pool's side of a worker's death is the same whatever the server's era: once, in the legacy era.
  if (era === "legacy") test(`${era}: close() after a worker replacement leaves no process behind, grandchildren included`, async (t) => {
    const pool = await openPool(t, era, { servers: { a: server({ ...stdioServer([], undefined, era), retry: "never" }) }, limits: LIMITS });
    const first = connectionOf(pool, "a");
    const firstChild = Number(textOf(await pool.callTool("a__spawn_child")));
    await settle(pool.callTool("a__huge", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 }));
    await readyAgain(pool, "a", first.threadId);
    const second = connectionOf(pool, "a");
    const secondChild = Number(textOf(await pool.callTool("a__spawn_child")));
    t.true(isAlive(second.pid!) && isAlive(secondChild));
    await pool.close();
    t.false(isAlive(second.pid!));
    await waitFor(() => [first.pid!, firstChild, secondChild].every((pid) => !isAlive(pid)), 5_000);
    t.pass();
  });
}

/**
 * Fault tolerance when a stdio server process dies or hangs (issue 3, items 1, 2, 4, 5, 7):
 * the owning worker notices, settles what was in flight, reopens with backoff, and leaves nothing behind.
 * Every test runs once per protocol era (issue 13): against the legacy fixture and the 2026-07-28 one.
 */
import test, { type ExecutionContext } from "ava";
import { rmSync, writeFileSync } from "node:fs";
import { McpPool, McpPoolError, type PoolConfigInput } from "../src/index.js";
import { assertEra, ERA_REVISION, FIXTURE_ERAS, fixtureServer, isAlive, readEvents, stdioServer, tmpFile, waitFor, type FixtureEra } from "./helpers/fixtures.js";
import { connectionOf, openReadyPool, server, settle, testSlots, textOf, type Settled } from "./helpers/faults.js";

const slot = testSlots(4);

/** A ready pool whose every server speaks `era` (checked, so a modern test cannot pass in the legacy era). */
async function openPool(t: ExecutionContext, era: FixtureEra, input: PoolConfigInput): Promise<McpPool> {
  const pool = await openReadyPool(t, input, slot);
  assertEra(t, pool, era);
  return pool;
}

function pidOf(pool: McpPool, server: string): number {
  const pid = connectionOf(pool, server).pid;
  if (pid === undefined) throw new Error(`server ${server} has no pid`);
  return pid;
}

/**
 * Resolves once the fixture's event log shows a call of `tool` (so it is really in flight on the
 * server); throws at once, with the outcome, if `call` settles first.
 */
async function calledOnServer(events: string, tool: string, call: Promise<Settled>): Promise<void> {
  let settled: Settled | undefined;
  void call.then((outcome) => (settled = outcome));
  await waitFor(() => {
    if (settled) throw new Error(`${tool} settled before it reached the server: ${JSON.stringify(settled)}`);
    return readEvents(events).some((e) => e.event === "call" && e.tool === tool);
  }, 20_000, 10);
}

function readyAgain(pool: McpPool, server: string, notPid?: number): Promise<void> {
  return waitFor(() => {
    const c = pool.stats().servers[server]!.connections[0];
    return c?.state === "ready" && c.pid !== undefined && c.pid !== notPid;
  }, 30_000);
}

/**
 * A stdio server that closes one of its pipes but keeps running: a wrapper that relays a fixture
 * server's stdin and stdout and, on SIGUSR1, closes its own stdout (fd 1, written with fs.writeSync so
 * Node holds no handle on it); on SIGUSR2, its own stdin (destroy() alone leaves fd 0 open: libuv never
 * closes fds 0-2). Either way it logs `stdout-closed` / `stdin-closed` to FIXTURE_EVENTS once done.
 */
const PIPE_CLOSER = [
  'const fs = require("node:fs");',
  'const { spawn } = require("node:child_process");',
  'const child = spawn(process.execPath, [process.argv[1], "stdio"], { stdio: ["pipe", "pipe", "inherit"] });',
  'const note = (event) => fs.appendFileSync(process.env.FIXTURE_EVENTS, JSON.stringify({ event, pid: process.pid }) + "\\n");',
  "child.stdin.on('error', () => {});",
  "process.stdin.pipe(child.stdin);",
  "let open = true;",
  "child.stdout.on('data', (d) => { if (open) fs.writeSync(1, d); });",
  "process.on('SIGUSR1', () => { open = false; fs.closeSync(1); note('stdout-closed'); });",
  "process.on('SIGUSR2', () => { process.stdin.unpipe(child.stdin); process.stdin.destroy(); fs.closeSync(0); note('stdin-closed'); });",
  "setInterval(() => {}, 1000);",
].join("\n");

function pipeCloser(era: FixtureEra, events: string) {
  return { command: process.execPath, args: ["-e", PIPE_CLOSER, fixtureServer(era)], env: { FIXTURE_EVENTS: events } };
}

/**
 * A fixture server that, while `block` exists, logs a "start" event and exits at once (cheaply, so a
 * busy loop would show as many starts). Otherwise `sh` execs node in place: the pool sees the server's own pid.
 */
function blockableServer(era: FixtureEra, block: string, events: string) {
  const script = [
    'if [ -e "$0" ]; then echo "{\\"event\\":\\"start\\",\\"pid\\":$$}" >> "$FIXTURE_EVENTS"; exit 3; fi',
    'exec "$1" "$2" stdio',
  ].join("\n");
  return { command: "/bin/sh", args: ["-c", script, block, process.execPath, fixtureServer(era)], env: { FIXTURE_EVENTS: events } };
}

const starts = (events: string) => readEvents(events).filter((e) => e.event === "start").length;

/** Starts `tool` on the server, waits until the server is really running it, then SIGKILLs the server. */
async function killDuring(pool: McpPool, events: string, call: () => Promise<{ content: unknown }>, tool: string): Promise<Settled> {
  const pid = pidOf(pool, "a");
  const outcome = settle(call());
  await calledOnServer(events, tool, outcome);
  process.kill(pid, "SIGKILL");
  return outcome;
}

for (const era of FIXTURE_ERAS) {
  test(`${era}: a server killed with SIGKILL is reported lost at once, its call in flight settles with CONNECTION_LOST, and the connection reopens with the same tools`, async (t) => {
    const events = tmpFile("faults-kill");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, {
      servers: { a: server({ ...stdioServer([], { FIXTURE_EVENTS: events }, era), retry: "never" }) },
    });
    const lost: Array<{ at: number; pid?: number }> = [];
    pool.on("connection:lost", (e: { pid?: number }) => lost.push({ at: Date.now(), pid: e.pid }));
    const changes: unknown[] = [];
    pool.on("tools:changed", (e) => changes.push(e));
    const tools = (await pool.listTools()).map((tool) => tool.name);
    const pid = pidOf(pool, "a");

    const inFlight = settle(pool.callTool("a__slow", { ms: 50_000 }, { timeoutMs: 55_000 }));
    await calledOnServer(events, "slow", inFlight);
    const killedAt = Date.now();
    process.kill(pid, "SIGKILL");

    t.deepEqual(await inFlight, { ok: false, code: "CONNECTION_LOST" });
    t.true(Date.now() - killedAt < 20_000, "the call settled long before its deadline");
    // The call's loss comes on the data plane and the connection's on the control plane: two ports, in either order.
    await waitFor(() => lost.length > 0, 5_000);
    t.is(lost.length, 1);
    t.is(lost[0]!.pid, pid);
    t.true(lost[0]!.at - killedAt < 20_000, "the loss was reported before any deadline could have noticed it");

    await readyAgain(pool, "a", pid);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "back" })), { ok: true, text: "back" });
    const stats = pool.stats();
    t.is(stats.crashes.server, 1);
    t.is(stats.crashes.worker, 0);
    t.is(stats.servers.a!.connections[0]!.restarts, 1);
    t.is(stats.servers.a!.protocolVersion, ERA_REVISION[era], "the reopened connection speaks the same era");
    t.false(isAlive(pid));
    t.is(readEvents(events).filter((e) => e.event === "start").length, 2);
    // The reopened server was listed again and offers the same tools: the catalog did not change.
    t.deepEqual((await pool.listTools()).map((tool) => tool.name), tools);
    t.is(changes.length, 0);
  });

  test(`${era}: a server that exits on its own is reopened, and the call that made it exit fails with CONNECTION_LOST`, async (t) => {
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], undefined, era)) } });
    const pid = pidOf(pool, "a");
    // `crash` is not annotated read-only or idempotent, so it is not retried (which would crash the new server too).
    t.deepEqual(await settle(pool.callTool("a__crash", { code: 7 })), { ok: false, code: "CONNECTION_LOST" });
    await readyAgain(pool, "a", pid);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "again" })), { ok: true, text: "again" });
    t.false(isAlive(pid));
  });

  test(`${era}: a server that closes its stdout is treated as lost at once: its process group is killed and the connection reopens`, async (t) => {
    const events = tmpFile("faults-stdout");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server({ ...pipeCloser(era, events), retry: "never" }) } });
    const wrapper = pidOf(pool, "a");
    const inner = Number(textOf(await pool.callTool("a__pid")));
    t.not(inner, wrapper);
    const inFlight = settle(pool.callTool("a__slow", { ms: 50_000 }, { timeoutMs: 55_000 }));
    await calledOnServer(events, "slow", inFlight);
    const closedAt = Date.now();
    process.kill(wrapper, "SIGUSR1");

    // Keepalive is off and the deadline is far: only noticing the closed stdout settles the call in time.
    t.deepEqual(await inFlight, { ok: false, code: "CONNECTION_LOST" });
    t.true(Date.now() - closedAt < 20_000, "noticed without waiting for the call's deadline");
    // Neither the wrapper (which never exits on its own) nor the server it started is left running.
    await waitFor(() => !isAlive(wrapper) && !isAlive(inner), 10_000);
    await readyAgain(pool, "a", wrapper);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "reopened" })), { ok: true, text: "reopened" });
    t.is(pool.stats().servers.a!.connections[0]!.restarts, 1);
  });

  test(`${era}: a server that closes its stdin and keeps running is treated as lost at once: the next call fails with CONNECTION_LOST and the connection reopens`, async (t) => {
    const events = tmpFile("faults-stdin");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server({ ...pipeCloser(era, events), retry: "never" }) } });
    const wrapper = pidOf(pool, "a");
    const inner = Number(textOf(await pool.callTool("a__pid")));
    process.kill(wrapper, "SIGUSR2");
    await waitFor(() => readEvents(events).some((e) => e.event === "stdin-closed"), 10_000, 10);
    t.true(isAlive(wrapper), "the server runs on without its stdin");

    // Keepalive is off and the deadline is far: only the write's failure on the closed stdin can end the call in time.
    const sentAt = Date.now();
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "lost" }, { timeoutMs: 30_000 })), { ok: false, code: "CONNECTION_LOST" });
    t.true(Date.now() - sentAt < 15_000, "failed without waiting for the call's deadline");
    // The server, which would never exit on its own, is ended with what it started, and a new one serves.
    await waitFor(() => !isAlive(wrapper) && !isAlive(inner), 10_000);
    await readyAgain(pool, "a", wrapper);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "reopened" })), { ok: true, text: "reopened" });
    t.is(pool.stats().servers.a!.connections[0]!.restarts, 1);
  });

  test(`${era}: a server that can no longer start costs a bounded number of spawns, fails fast with SERVER_UNAVAILABLE, and a probe brings it back`, async (t) => {
    const events = tmpFile("faults-never");
    const block = tmpFile("faults-block");
    t.teardown(() => {
      rmSync(events, { force: true });
      rmSync(block, { force: true });
    });
    const reconnect = { maxAttempts: 2, initialDelayMs: 20, maxDelayMs: 50, probeIntervalMs: 1_000 };
    const pool = await openPool(t, era, { servers: { a: server({ ...blockableServer(era, block, events), reconnect }) } });
    const startsWhenFailed: number[] = [];
    pool.on("connection:failed", () => startsWhenFailed.push(starts(events)));
    const pid = pidOf(pool, "a");

    writeFileSync(block, "");
    process.kill(pid, "SIGKILL");
    await waitFor(() => connectionOf(pool, "a").state === "failed", 20_000, 10);
    // The first start, then the immediate reopen and maxAttempts retries.
    t.deepEqual(startsWhenFailed, [1 + 1 + reconnect.maxAttempts]);
    const afterFailed = starts(events);

    const before = Date.now();
    const refused = await settle(pool.callTool("a__echo", { message: "x" }, { timeoutMs: 10_000 }));
    t.deepEqual(refused, { ok: false, code: "SERVER_UNAVAILABLE" });
    t.true(Date.now() - before < 5_000, "a failed server refuses at once instead of holding the call for 10 s");

    // Half-open: one attempt per probe interval, not a busy loop.
    const windowMs = 3_000;
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const probes = starts(events) - afterFailed;
    t.true(probes >= 1 && probes <= Math.ceil(windowMs / reconnect.probeIntervalMs) + 1, `${probes} probes in ${windowMs} ms`);
    t.is(connectionOf(pool, "a").state, "failed");

    rmSync(block);
    await readyAgain(pool, "a", pid);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "probed" })), { ok: true, text: "probed" });
    t.is(pool.stats().servers.a!.state, "ready");
  });

  // Legacy keepalive pings; 2026-07-28 has no ping, so it sends server/discover: a hung server answers neither.
  test(`${era}: a hung server is caught by keepalive: its process group is killed, calls in flight end with CONNECTION_LOST, and it serves again`, async (t) => {
    const events = tmpFile("faults-hang");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, {
      servers: {
        // Generous ping timeouts: a loaded machine must not pass for a hung server before `hang` runs.
        a: server({ ...stdioServer([], { FIXTURE_EVENTS: events }, era), retry: "never", keepalive: { intervalMs: 250, timeoutMs: 1_500, failures: 2 } }),
      },
    });
    const pid = pidOf(pool, "a");
    const grandchild = Number(textOf(await pool.callTool("a__spawn_child")));
    t.true(isAlive(grandchild));

    const slow = settle(pool.callTool("a__slow", { ms: 50_000 }, { timeoutMs: 55_000 }));
    await calledOnServer(events, "slow", slow);
    const hungAt = Date.now();
    const hang = settle(pool.callTool("a__hang", {}, { timeoutMs: 55_000 }));

    const outcomes = await Promise.all([hang, slow]);
    for (const outcome of outcomes) {
      t.false(outcome.ok);
      if (!outcome.ok) t.true(outcome.code === "CONNECTION_LOST" || outcome.code === "TIMEOUT", outcome.code);
    }
    t.true(Date.now() - hungAt < 30_000, "keepalive noticed the hang long before the calls' deadlines");
    await waitFor(() => !isAlive(pid) && !isAlive(grandchild), 10_000);
    await readyAgain(pool, "a", pid);
    t.deepEqual(await settle(pool.callTool("a__echo", { message: "unstuck" })), { ok: true, text: "unstuck" });
  });

  test(`${era}: a hung call with a short deadline ends with TIMEOUT, never silence`, async (t) => {
    const pool = await openPool(t, era, {
      servers: { a: server(stdioServer([], undefined, era)) },
    });
    const pid = pidOf(pool, "a");
    const started = Date.now();
    t.deepEqual(await settle(pool.callTool("a__hang", {}, { timeoutMs: 500 })), { ok: false, code: "TIMEOUT" });
    t.true(Date.now() - started < 10_000);
    // Without keepalive the server stays hung; the pool still tears it down on close.
    await pool.close();
    t.false(isAlive(pid));
  });

  test(`${era}: a read-only call in flight when its server is killed is retried once and succeeds after recovery`, async (t) => {
    const events = tmpFile("faults-retry");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], { FIXTURE_EVENTS: events }, era)) } });
    // The first attempt waits for a file made only after the kill: it is certainly in flight then.
    const gate = tmpFile("faults-retry-gate");
    t.teardown(() => rmSync(gate, { force: true }));
    const outcome = killDuring(pool, events, () => pool.callTool("a__wait_file", { path: gate }, { timeoutMs: 50_000 }), "wait_file");
    await waitFor(() => readEvents(events).filter((e) => e.event === "start").length === 2, 20_000, 10);
    writeFileSync(gate, "");
    t.deepEqual(await outcome, { ok: true, text: gate });
    // Once on the killed server, once on its successor.
    t.is(readEvents(events).filter((e) => e.event === "call" && e.tool === "wait_file").length, 2);
    t.is(new Set(readEvents(events).filter((e) => e.event === "call").map((e) => e.pid)).size, 2);
  });

  test(`${era}: a call to a tool not marked read-only or idempotent fails with CONNECTION_LOST when its server is killed, and is not run again`, async (t) => {
    const events = tmpFile("faults-noretry");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], { FIXTURE_EVENTS: events }, era)) } });
    // `hang` keeps the server from reading anything else, so `increment` is certainly in flight, not done.
    const hang = settle(pool.callTool("a__hang", {}, { timeoutMs: 50_000 }));
    await calledOnServer(events, "hang", hang);
    const increment = settle(pool.callTool("a__increment", {}, { timeoutMs: 50_000 }));
    await waitFor(() => connectionOf(pool, "a").inFlight === 2, 10_000, 10);
    const pid = pidOf(pool, "a");
    process.kill(pid, "SIGKILL");
    t.deepEqual(await increment, { ok: false, code: "CONNECTION_LOST" });
    t.deepEqual(await hang, { ok: false, code: "CONNECTION_LOST" });
    await readyAgain(pool, "a", pid);
    t.deepEqual(await settle(pool.callTool("a__get_count")), { ok: true, text: "0" });
    t.is(readEvents(events).filter((e) => e.event === "call" && e.tool === "increment").length, 0);
  });

  // The pool's rule, whatever the era (the reopen itself runs in both eras above): once.
  if (era === "legacy") test(`${era}: with retry "never" a read-only call in flight when its server is killed fails with CONNECTION_LOST`, async (t) => {
    const events = tmpFile("faults-never-retry");
    t.teardown(() => rmSync(events, { force: true }));
    const pool = await openPool(t, era, {
      servers: { a: server({ ...stdioServer([], { FIXTURE_EVENTS: events }, era), retry: "never" }) },
    });
    const gate = tmpFile("faults-noretry-gate");
    const outcome = await killDuring(pool, events, () => pool.callTool("a__wait_file", { path: gate }, { timeoutMs: 50_000 }), "wait_file");
    t.deepEqual(outcome, { ok: false, code: "CONNECTION_LOST" });
    t.is(readEvents(events).filter((e) => e.event === "call" && e.tool === "wait_file").length, 1);
  });

  // The added tool's list_changed comes as a notification (legacy) or on the subscriptions/listen stream (2026-07-28).
  test(`${era}: after a reopen the tools are listed again and tools:changed fires because the set changed`, async (t) => {
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], undefined, era)) } });
    const changes: unknown[] = [];
    pool.on("tools:changed", (e) => changes.push(e));
    await pool.callTool("a__add_tool", { name: "extra" });
    await waitFor(async () => (await pool.listTools()).some((tool) => tool.name === "a__extra"), 20_000);
    t.is(changes.length, 1);

    // The restarted server does not know the added tool: the catalog follows it.
    const pid = pidOf(pool, "a");
    process.kill(pid, "SIGKILL");
    await readyAgain(pool, "a", pid);
    await waitFor(() => changes.length === 2, 20_000);
    const names = (await pool.listTools()).map((tool) => tool.name);
    t.false(names.includes("a__extra"));
    t.true(names.includes("a__echo"));
    t.deepEqual(await settle(pool.callTool("a__extra")), { ok: false, code: "TOOL_NOT_FOUND" });
  });

  // The pool's rule, whatever the era (the reopen itself runs in both eras above): once.
  if (era === "legacy") test(`${era}: calls made while the connection is coming back wait for it instead of failing`, async (t) => {
    // A slow start makes the gap wide enough that every call below is made before the server is back.
    const pool = await openPool(t, era, {
      servers: { a: server({ ...stdioServer(["--startup-delay-ms", "400"], undefined, era), retry: "never" }) },
    });
    const pid = pidOf(pool, "a");
    process.kill(pid, "SIGKILL");
    await waitFor(() => connectionOf(pool, "a").state !== "ready", 20_000, 5);
    const calls = Array.from({ length: 5 }, (_, i) => settle(pool.callTool("a__echo", { message: `m${i}` }, { timeoutMs: 50_000 })));
    t.not(connectionOf(pool, "a").state, "ready");
    const outcomes = await Promise.all(calls);
    t.deepEqual(outcomes, Array.from({ length: 5 }, (_, i) => ({ ok: true, text: `m${i}` })));
    t.not(pidOf(pool, "a"), pid);
  });

  // The pool's rule, whatever the era (the reopen itself runs in both eras above): once.
  if (era === "legacy") test(`${era}: a call waiting for a connection that does not come back in time ends with its deadline`, async (t) => {
    const pool = await openPool(t, era, {
      servers: { a: server(stdioServer(["--startup-delay-ms", "3000"], undefined, era)) },
    });
    const pid = pidOf(pool, "a");
    process.kill(pid, "SIGKILL");
    await waitFor(() => connectionOf(pool, "a").state !== "ready", 20_000, 5);
    const started = Date.now();
    const outcome = await settle(pool.callTool("a__echo", { message: "late" }, { timeoutMs: 300 }));
    t.deepEqual(outcome, { ok: false, code: "TIMEOUT" });
    t.true(Date.now() - started < 2_500, "it ended at its deadline, not when the server came back");
  });

  // The pool's rule, whatever the era (the reopen itself runs in both eras above): once.
  if (era === "legacy") test(`${era}: a call the host refuses unsent (its server just died) and the pool cannot route again, because close() began, fails without the internal NOT_SENT marker in its data`, async (t) => {
    const events = tmpFile("faults-unsent-events");
    const block = tmpFile("faults-unsent-block");
    t.teardown(() => rmSync(events, { force: true }));
    t.teardown(() => rmSync(block, { force: true }));
    // Once `block` exists the server cannot start again, and with maxAttempts 0 the host is failed after its one
    // immediate reopen: it refuses every call unsent until a probe (far off).
    const pool = await openPool(t, era, {
      servers: { a: server({ ...blockableServer(era, block, events), retry: "never", reconnect: { maxAttempts: 0, probeIntervalMs: 600_000 } }) },
    });
    const pid = pidOf(pool, "a");
    writeFileSync(block, "");
    process.kill(pid, "SIGKILL");
    // Block the main thread while the worker sees its link die: the main thread has not heard of it yet, so the
    // call below goes to the host, which refuses it unsent; close() right after leaves nothing to route it to.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1_000);
    const call = pool.callTool("a__echo", { message: "too late" }, { timeoutMs: 20_000 });
    const closed = pool.close();
    const error = await t.throwsAsync(call);
    t.true(error instanceof McpPoolError, String(error));
    const { code, data } = error as McpPoolError;
    t.true(code === "SERVER_UNAVAILABLE" || code === "CONNECTION_LOST", code);
    t.is(data, undefined, "no pool-internal marker reaches the caller");
    await closed;
    t.false(isAlive(pid));
  });

  test(`${era}: no process is left behind after a kill -9, a reopen and close(), grandchildren included`, async (t) => {
    const pool = await openPool(t, era, { servers: { a: server(stdioServer([], undefined, era)) } });
    const first = pidOf(pool, "a");
    const firstChild = Number(textOf(await pool.callTool("a__spawn_child")));
    t.true(isAlive(firstChild));
    process.kill(first, "SIGKILL");
    // The leader is gone: its group goes with it.
    await waitFor(() => !isAlive(first) && !isAlive(firstChild), 10_000);

    await readyAgain(pool, "a", first);
    const second = pidOf(pool, "a");
    const secondChild = Number(textOf(await pool.callTool("a__spawn_child")));
    t.true(isAlive(second) && isAlive(secondChild));
    await pool.close();
    t.false(isAlive(second));
    // SIGKILL is sent to the group before close() resolves; on a loaded machine the kernel may take a moment.
    await waitFor(() => !isAlive(secondChild), 2_000);
    t.is(pool.stats().servers.a!.state, "closed");
  });
}

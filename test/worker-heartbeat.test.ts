/**
 * A worker wedged by a caller's argument (issue 12, item 11): a `pattern` in a tool's inputSchema that
 * backtracks forever on the argument keeps the worker's thread busy without killing it. The main thread's
 * heartbeat notices the silence and replaces the worker as a crashed one.
 */
import test from "ava";
import { fileURLToPath } from "node:url";
import { parseConfig } from "../src/index.js";
import { connectionOf, openReadyPool, server, settle } from "./helpers/faults.js";
import { waitFor } from "./helpers/fixtures.js";

const HAZARD_SERVER = fileURLToPath(new URL("./fixtures/hazard-server.js", import.meta.url));
/** Catastrophic for `^(a+)+$`: a long run of a's that does not match at its end. */
const WEDGING_TEXT = `${"a".repeat(41)}!`;

test("a worker wedged by a pathological argument is replaced; its call fails, the next call succeeds and stats count a worker crash", async (t) => {
  const pool = await openReadyPool(t, {
    servers: { hazard: server({ command: process.execPath, args: [HAZARD_SERVER] }) },
    limits: { workerHeartbeatMs: 1_000 },
  });
  const crashes: unknown[] = [];
  pool.on("worker:crash", (e) => crashes.push(e));
  const before = connectionOf(pool, "hazard");

  const started = Date.now();
  const wedged = await settle(pool.callTool("hazard__match", { text: WEDGING_TEXT }, { timeoutMs: 30_000 }));
  t.deepEqual(wedged, { ok: false, code: "CONNECTION_LOST" });
  t.true(Date.now() - started < 15_000, "noticed by the heartbeat, not by the call's deadline");

  t.deepEqual(await settle(pool.callTool("hazard__echo", { message: "after" }, { timeoutMs: 30_000 })), { ok: true, text: "after" });
  const after = connectionOf(pool, "hazard");
  t.not(after.threadId, before.threadId);
  t.not(after.pid, before.pid);
  t.is(after.restarts, 1);
  t.is(pool.stats().crashes.worker, 1);
  t.is(crashes.length, 1);
});

test("a worker wedged after its call timed out is still replaced", async (t) => {
  const pool = await openReadyPool(t, {
    servers: { hazard: server({ command: process.execPath, args: [HAZARD_SERVER] }) },
    limits: { workerHeartbeatMs: 1_000 },
  });
  const before = connectionOf(pool, "hazard");
  // The call's own deadline comes first; the worker stays wedged after it.
  t.deepEqual(await settle(pool.callTool("hazard__match", { text: WEDGING_TEXT }, { timeoutMs: 200 })), { ok: false, code: "TIMEOUT" });
  await waitFor(() => pool.stats().crashes.worker === 1, 15_000);
  t.deepEqual(await settle(pool.callTool("hazard__echo", { message: "after" }, { timeoutMs: 30_000 })), { ok: true, text: "after" });
  t.not(connectionOf(pool, "hazard").threadId, before.threadId);
  t.is(pool.stats().crashes.worker, 1);
});

test("a benign pattern argument is validated as usual and nothing is replaced", async (t) => {
  const pool = await openReadyPool(t, {
    servers: { hazard: server({ command: process.execPath, args: [HAZARD_SERVER] }) },
    limits: { workerHeartbeatMs: 1_000 },
  });
  t.deepEqual(await settle(pool.callTool("hazard__match", { text: "aaaa" })), { ok: true, text: "aaaa" });
  t.deepEqual(await settle(pool.callTool("hazard__match", { text: "ab" })), { ok: false, code: "INVALID_ARGUMENTS" });
  t.is(pool.stats().crashes.worker, 0);
});

test("limits.workerHeartbeatMs defaults to 10 s, accepts 0 (off), and refuses values that would misfire", (t) => {
  t.is(parseConfig({ servers: { a: { command: "x" } } }).limits.workerHeartbeatMs, 10_000);
  t.is(parseConfig({ servers: { a: { command: "x" } }, limits: { workerHeartbeatMs: 0 } }).limits.workerHeartbeatMs, 0);
  for (const bad of [50, -1, 1.5, "1000"]) {
    const error = t.throws(() => parseConfig({ servers: { a: { command: "x" } }, limits: { workerHeartbeatMs: bad } }));
    t.is((error as { code?: string }).code, "CONFIG_INVALID");
    t.regex(error!.message, /limits\.workerHeartbeatMs/);
  }
});

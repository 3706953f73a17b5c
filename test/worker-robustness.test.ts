/**
 * What a hostile or unlucky server does to a connection's worker (issue 12, items 4, 8, 10, 20, 21):
 * close() meets a connection still connecting; a flood of notifications; list_changed without end;
 * schemas that cannot be compiled or change under the same `$id`.
 */
import test, { type ExecutionContext } from "ava";
import { createPool, McpPool, parseConfig, type PoolConfigInput } from "../src/index.js";
import { fileURLToPath } from "node:url";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { isAlive, tmpFile, waitFor } from "./helpers/fixtures.js";
import { server, settle, testSlots } from "./helpers/faults.js";

const slot = testSlots(2);

const HOSTILE_SERVER = fileURLToPath(new URL("./fixtures/hostile-server.js", import.meta.url));

function hostile(...args: string[]) {
  return server({ command: process.execPath, args: [HOSTILE_SERVER, ...args] });
}

/** Well under the worker's close grace (5 s), which is what a close that hangs ends up waiting. */
const QUICK_CLOSE_MS = 3_000;

/** Starts a pool without waiting for it; closed at teardown. */
async function startPool(t: ExecutionContext, input: PoolConfigInput): Promise<McpPool> {
  await slot(t);
  const pool = new McpPool(parseConfig(input));
  t.teardown(() => pool.close());
  return pool;
}

async function timedClose(pool: McpPool): Promise<number> {
  const started = Date.now();
  await pool.close();
  return Date.now() - started;
}

/** Whether `promise` settles within `ms` (never rejects). */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

// ---- item 4: close() during connect -----------------------------------------------------------

// While the stall file exists, the server answers initialize only once its stdin has ended: close()
// during connect ends stdin, the answer comes anyway, and the client's next send (notifications/initialized)
// meets an ended stdin. The server keeps running until it is signalled, as many servers do.
function stallFile(t: ExecutionContext): string {
  const file = tmpFile("stall-initialize");
  t.teardown(() => {
    rmSync(file, { force: true });
    rmSync(`${file}.asked`, { force: true });
  });
  return file;
}

/** Resolves once the server has the initialize request and holds back its answer. */
function initializeStalled(file: string): Promise<void> {
  return waitFor(() => existsSync(`${file}.asked`), 30_000, 5);
}

test("close() right after new McpPool() settles quickly, ready() settles, and no server process is left", async (t) => {
  const stall = stallFile(t);
  writeFileSync(stall, "");
  const pool = await startPool(t, { servers: { a: hostile("--stall-initialize-if", stall) } });
  const ready = pool.ready();
  await initializeStalled(stall);
  const pid = pool.stats().servers.a!.connections[0]!.pid!;
  t.is(pool.stats().servers.a!.connections[0]!.state, "connecting");

  const took = await timedClose(pool);
  t.true(took < QUICK_CLOSE_MS, `close() took ${took} ms`);
  t.true(await settlesWithin(ready, 1_000), "ready() settles once the pool is closed");
  t.false(isAlive(pid), "the server is gone");
  t.is(pool.stats().workers.active, 0);
});

test("close() while a crashed server is being reopened settles quickly and leaves no server process", async (t) => {
  const stall = stallFile(t);
  await slot(t);
  const pool = await createPool({ servers: { a: hostile("--stall-initialize-if", stall) } });
  t.teardown(() => pool.close());
  await waitFor(() => pool.stats().servers.a!.connections[0]?.pid !== undefined, 30_000);
  const first = pool.stats().servers.a!.connections[0]!.pid!;
  writeFileSync(stall, "");
  t.like(await settle(pool.callTool("a__crash", {})), { ok: false });
  await initializeStalled(stall);
  const second = pool.stats().servers.a!.connections[0]!.pid!;
  t.not(pool.stats().servers.a!.connections[0]!.state, "ready");

  const took = await timedClose(pool);
  t.true(took < QUICK_CLOSE_MS, `close() took ${took} ms`);
  t.false(isAlive(first));
  t.false(isAlive(second), "the server being reopened is gone");
  t.is(pool.stats().workers.active, 0);
});

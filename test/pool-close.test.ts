/**
 * Closing: idempotent, refuses new calls, drains calls in flight, leaves no server process
 * (grandchildren included) and no worker thread, and lets the host process exit by itself. Every
 * test runs once per protocol era (issue 13): against the legacy fixture and the 2026-07-28 one.
 */
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPool, McpPoolError, type PoolConfigInput } from "../src/index.js";
import { testSlots } from "./helpers/faults.js";
import { assertEra, ERA_REVISION, FIXTURE_ERAS, isAlive, stdioServer, type FixtureEra } from "./helpers/fixtures.js";

const CLOSE_EXIT_SCRIPT = fileURLToPath(new URL("./helpers/close-exit.js", import.meta.url));

/**
 * At most 6 tests of this file start servers at once: each test runs in both eras, and twice as many
 * cold starts together push connects past their deadline on a loaded 2-core machine.
 */
const slot = testSlots(6);

/** A pool closed at teardown, whose every server speaks `era`. */
async function pool(t: ExecutionContext, era: FixtureEra, config: PoolConfigInput): Promise<McpPool> {
  await slot(t);
  const p = await createPool(config);
  t.teardown(() => p.close());
  assertEra(t, p, era);
  return p;
}

function text(result: CallToolResult): string {
  const first = result.content[0];
  if (first?.type !== "text") throw new Error(`expected a text content, got ${JSON.stringify(result.content)}`);
  return first.text;
}

async function rejectsWith(t: ExecutionContext, promise: Promise<unknown>, code: McpPoolError["code"]): Promise<McpPoolError> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof McpPoolError, `expected McpPoolError, got ${String(error)}`);
  t.is((error as McpPoolError).code, code);
  return error as McpPoolError;
}

// What close() does to calls is the main thread's, whatever the era: once. What it leaves behind: both eras.
for (const era of FIXTURE_ERAS) {
  if (era === "legacy") test(`${era}: close() is idempotent and returns the same promise`, async (t) => {
    const p = await pool(t, era, { servers: { fixture: stdioServer([], undefined, era) } });
    const first = p.close();
    t.is(p.close(), first);
    await first;
    t.is(p.close(), first);
  });

  if (era === "legacy") test(`${era}: calls after close() reject with POOL_CLOSED`, async (t) => {
    const p = await pool(t, era, { servers: { fixture: stdioServer([], undefined, era) } });
    const closing = p.close();
    await rejectsWith(t, p.callTool("fixture__echo", { message: "too early" }), "POOL_CLOSED");
    await closing;
    await rejectsWith(t, p.callTool("fixture__echo", { message: "too late" }), "POOL_CLOSED");
    await rejectsWith(t, p.callTool("fixture__no_such_tool", {}), "POOL_CLOSED");
    await rejectsWith(t, p.callTool("fixture__echo", { message: "x" }, { sessionId: "s" }), "POOL_CLOSED");
    await rejectsWith(t, p.session("s").callTool("fixture__echo", { message: "x" }), "POOL_CLOSED");
  });

  test(`${era}: close() leaves no server process, grandchildren included, and no worker`, async (t) => {
    const p = await pool(t, era, { servers: { fixture: { ...stdioServer([], undefined, era), connections: { min: 2 } } } });
    const pids = p.stats().servers.fixture!.connections.map((c) => c.pid!);
    t.is(pids.length, 2);
    t.true(pids.every((pid) => Number.isInteger(pid)));
    // Both replicas: two concurrent calls go to different connections (fewest in flight wins).
    const children = await Promise.all([p.callTool("fixture__spawn_child", {}), p.callTool("fixture__spawn_child", {})]);
    const grandchildren = children.map((r) => Number(text(r)));
    const all = [...pids, ...grandchildren];
    t.true(all.every(isAlive), "everything runs before close");
    t.is(p.stats().workers.active, 2);

    await p.close();
    t.deepEqual(all.filter(isAlive), [], "nothing runs after close");
    const stats = p.stats();
    t.is(stats.workers.active, 0);
    t.deepEqual(stats.servers.fixture!.connections, []);
    t.is(stats.servers.fixture!.state, "closed");
  });

  test(`${era}: close() lets a call in flight finish`, async (t) => {
    const p = await pool(t, era, { servers: { fixture: stdioServer([], undefined, era) } });
    const call = p.callTool("fixture__slow", { ms: 300 });
    t.is(p.stats().calls.inFlight, 1);
    const closing = p.close();
    t.is(text(await call), "done after 300ms");
    await closing;
    t.is(p.stats().calls.ok, 1);
  });

  if (era === "legacy") test(`${era}: a call still running at the drain deadline rejects with POOL_CLOSED`, async (t) => {
    const p = await pool(t, era, { servers: { fixture: stdioServer([], undefined, era) }, limits: { drainTimeoutMs: 200 } });
    const call = p.callTool("fixture__slow", { ms: 30_000 }, { timeoutMs: 40_000 });
    const started = Date.now();
    await p.close();
    await rejectsWith(t, call, "POOL_CLOSED");
    t.true(Date.now() - started < 25_000, "close() does not wait for the call to end");
  });
}

/** The host program must be done this long after it printed "closed" (a leaked handle keeps it alive for good). */
const EXIT_AFTER_CLOSE_MS = 10_000;
/** Overall bound, generous for a busy machine (starting node, a worker and the fixture). */
const HOST_DEADLINE_MS = 45_000;

interface HostRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms from the "closed" line to the exit (undefined if it never printed it). */
  exitAfterClose: number | undefined;
}

/** Runs the close-exit host program; resolves with how it ended, or kills it at the deadline. */
async function runHost(t: ExecutionContext, mode: "simple" | "busy", era: FixtureEra): Promise<HostRun> {
  await slot(t);
  const child = spawn(process.execPath, [CLOSE_EXIT_SCRIPT, mode, era], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  let closedAt: number | undefined;
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (closedAt === undefined && stdout.includes("closed\n")) closedAt = Date.now();
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  return new Promise((resolve) => {
    const end = (code: number | null) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, exitAfterClose: closedAt === undefined ? undefined : Date.now() - closedAt });
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      end(null);
    }, HOST_DEADLINE_MS);
    // 'close' (not 'exit'): stdout is fully read by then.
    child.once("close", (code) => end(code));
  });
}

function assertExitedCleanly(t: ExecutionContext, run: HostRun, era: FixtureEra): void {
  t.is(run.code, 0, `exit code 0; stdout: ${run.stdout}; stderr: ${run.stderr}`);
  t.true(run.stdout.includes(`protocol ${ERA_REVISION[era]}\n`), `the host's pool spoke the ${era} era; stdout: ${run.stdout}`);
  t.not(run.exitAfterClose, undefined, "it printed closed");
  t.true(run.exitAfterClose! < EXIT_AFTER_CLOSE_MS, `exited ${run.exitAfterClose} ms after close() resolved`);
}

for (const era of FIXTURE_ERAS) {
  test(`${era}: the host process exits by itself after close()`, async (t) => {
    assertExitedCleanly(t, await runHost(t, "simple", era), era);
  });

  test(`${era}: the host process exits by itself after close() following timeouts, aborts, progress and a session`, async (t) => {
    const run = await runHost(t, "busy", era);
    assertExitedCleanly(t, run, era);
    t.true(run.stdout.includes("outcomes TIMEOUT,ABORTED,ok,ok,TOOL_NOT_FOUND"), run.stdout);
  });
}

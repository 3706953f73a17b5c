/**
 * Chaos (issue 3, item 8): steady load over three servers while server processes are SIGKILLed and
 * workers are killed (by a message far beyond `limits.workerHeapMb`), at random. Every call settles
 * with a result or a coded McpPoolError within its deadline, every server is ready again at the end,
 * nothing the pool started is left running, and the host's event loop stays responsive. s1 is the
 * 2026-07-28 fixture, s0 and s2 the legacy one (issue 13): both eras in one run.
 */
import test from "ava";
import { rmSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createPool, McpPoolError, type ServerConfigInput } from "../src/index.js";
import { assertEra, isAlive, readEvents, stdioServer, tmpFile, waitFor } from "./helpers/fixtures.js";

const SERVERS = ["s0", "s1", "s2"] as const;
const CHAOS_MS = 6_000;
/** Calls run this many at a time, all the time. */
const CONCURRENCY = 8;
/** A settled call may take this much longer than its deadline (timers on a loaded 2-core machine). */
const SLACK_MS = 1_500;
/** Codes a call may end with while its server or worker is being killed under it. */
const EXPECTED_CODES = new Set(["CONNECTION_LOST", "SERVER_UNAVAILABLE", "TIMEOUT", "POOL_EXHAUSTED"]);

const random = (n: number) => Math.floor(Math.random() * n);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Outcome {
  server: string;
  tool: string;
  timeoutMs: number;
  tookMs: number;
  code: string | undefined;
  message?: string;
}

test("under steady load, random kills of server processes and workers never leave a call unsettled, a server down, or a process behind", async (t) => {
  const events = tmpFile("chaos-events");
  t.teardown(() => rmSync(events, { force: true }));
  const server = (i: number): ServerConfigInput => ({
    ...stdioServer(["--name", `s${i}`], { FIXTURE_EVENTS: events }, i === 1 ? "modern" : "legacy"),
    stderr: "ignore",
    connections: i === 0 ? { min: 2, max: 2 } : { min: 1, max: 1 },
    connectTimeoutMs: 20_000,
    reconnect: { maxAttempts: 6, initialDelayMs: 20, maxDelayMs: 200, probeIntervalMs: 500 },
    keepalive: { intervalMs: 0 },
  });
  const pool = await createPool({
    servers: { s0: server(0), s1: server(1), s2: server(2) },
    limits: { workerHeapMb: 32, maxMessageMb: 1024, acquireTimeoutMs: 5_000 },
  });
  t.teardown(() => pool.close());
  await waitFor(() => SERVERS.every((s) => pool.stats().servers[s]!.state === "ready"), 20_000);
  assertEra(t, pool, "legacy", ["s0", "s2"]);
  assertEra(t, pool, "modern", ["s1"]);

  const grandchildren: number[] = [];
  const statsPids = new Set<number>();
  const notePids = () => {
    for (const s of SERVERS) for (const c of pool.stats().servers[s]!.connections) if (c.pid !== undefined) statsPids.add(c.pid);
  };
  notePids();
  const workerCrashes: unknown[] = [];
  pool.on("worker:crash", (e) => workerCrashes.push(e));

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();

  // ---- load: CONCURRENCY loops of random calls until told to stop
  const outcomes: Outcome[] = [];
  const foreign: unknown[] = [];
  let loading = true;
  const oneCall = async (): Promise<void> => {
    const server = SERVERS[random(SERVERS.length)]!;
    const roll = random(20);
    const [tool, args] =
      roll < 8 ? ["echo", { message: `m${roll}` }]
      : roll < 14 ? ["slow", { ms: 5 + random(200) }]
      : roll < 17 ? ["increment", {}]
      : roll < 19 ? ["get_count", {}]
      : ["spawn_child", {}];
    const timeoutMs = 2_000 + random(2_000);
    const started = Date.now();
    let code: string | undefined;
    let message: string | undefined;
    try {
      const result = await pool.callTool(`${server}__${tool}`, args, { timeoutMs });
      if (tool === "spawn_child") grandchildren.push(Number((result.content as Array<{ text: string }>)[0]!.text));
    } catch (error) {
      if (error instanceof McpPoolError) {
        code = error.code;
        message = error.message;
      } else foreign.push(error);
    }
    outcomes.push({ server, tool, timeoutMs, tookMs: Date.now() - started, code, message });
  };
  const loaders = Array.from({ length: CONCURRENCY }, async () => {
    while (loading) await oneCall();
  });

  // ---- chaos: every 300-800 ms, SIGKILL a server process or kill a worker
  let serverKills = 0;
  let workerKills = 0;
  const hugeCalls: Promise<unknown>[] = [];
  const chaosUntil = Date.now() + CHAOS_MS;
  while (Date.now() < chaosUntil) {
    await sleep(300 + random(500));
    notePids();
    const server = SERVERS[random(SERVERS.length)]!;
    const live = pool.stats().servers[server]!.connections.filter((c) => c.state === "ready" && c.pid !== undefined);
    if (live.length === 0) continue;
    if (random(3) < 2) {
      try {
        process.kill(live[random(live.length)]!.pid!, "SIGKILL");
        serverKills++;
      } catch {
        // it died on its own meanwhile
      }
    } else {
      // 64 MB cannot be decoded in a 32 MB heap: the worker that receives it dies.
      hugeCalls.push(pool.callTool(`${server}__huge`, { bytes: 64_000_000 }, { timeoutMs: 5_000 }).catch((e: unknown) => e));
      workerKills++;
    }
  }
  loading = false;
  await Promise.all(loaders);
  const hugeOutcomes = await Promise.all(hugeCalls);
  delay.disable();

  // ---- every call settled, with a result or a coded McpPoolError, within its deadline
  t.deepEqual(foreign, [], "every failure is an McpPoolError");
  const codes: Record<string, number> = {};
  for (const o of outcomes) codes[o.code ?? "ok"] = (codes[o.code ?? "ok"] ?? 0) + 1;
  t.log(`calls: ${outcomes.length} ${JSON.stringify(codes)}; server kills ${serverKills}, huge calls ${workerKills}, worker crashes ${workerCrashes.length}`);
  for (const o of outcomes) if (o.code !== undefined) t.true(EXPECTED_CODES.has(o.code), `${o.tool} on ${o.server} failed with ${o.code}: ${o.message}`);
  const reasons = new Set(outcomes.filter((o) => o.code !== undefined && o.code !== "TIMEOUT").map((o) => `${o.code}: ${o.message}`));
  if (reasons.size > 0) t.log([...reasons].join("\n"));
  const late = outcomes.filter((o) => o.tookMs > o.timeoutMs + SLACK_MS);
  t.deepEqual(late, [], "no call outlived its deadline");
  t.true((codes.ok ?? 0) > outcomes.length / 2, "most calls succeeded");
  for (const h of hugeOutcomes) t.true(h instanceof McpPoolError, `huge ended with ${String(h)}`);
  t.true(serverKills + workerKills > 0);

  // ---- the host stayed responsive
  const p99 = delay.percentile(99) / 1e6;
  t.log(`event loop delay: p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms`);
  t.true(p99 < 200, `event loop p99 ${p99.toFixed(1)} ms`);

  // ---- every server comes back and serves. A `huge` that timed out may still be arriving and kill
  // a worker late: a call made meanwhile waits for the replacement, so give it room.
  await waitFor(() => SERVERS.every((s) => pool.stats().servers[s]!.connections.every((c) => c.state === "ready")), 15_000);
  for (const s of SERVERS) {
    const before = JSON.stringify(pool.stats().servers[s]);
    const result = await pool.callTool(`${s}__echo`, { message: `${s} ok` }, { timeoutMs: 15_000 }).catch((error: unknown) => {
      // What the pool and the servers saw, for whoever has to find out why.
      t.log(`before: ${before}\nafter: ${JSON.stringify(pool.stats().servers[s])}\nlast events: ${JSON.stringify(readEvents(events).slice(-15))}`);
      throw error;
    });
    t.is((result.content as Array<{ text: string }>)[0]!.text, `${s} ok`);
  }
  notePids();
  t.is(pool.stats().crashes.worker, workerCrashes.length);

  // ---- nothing left behind: every server process and grandchild the pool ever started
  await pool.close();
  const pids = new Set<number>([...statsPids, ...readEvents(events).filter((e) => e.event === "start").map((e) => e.pid as number), ...grandchildren]);
  t.true(pids.size >= SERVERS.length + 1);
  await waitFor(() => [...pids].every((pid) => !isAlive(pid)), 5_000).catch(() => {});
  t.deepEqual([...pids].filter((pid) => isAlive(pid)), [], "no process the pool started is alive");
  t.is(pool.stats().workers.active, 0);
});

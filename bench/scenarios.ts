/**
 * The measurements. Each function measures one round of one figure on one open subject, or one
 * round of a figure that needs its own clients (connect, recovery, cold start, scaling).
 * Every wait here is bounded: calls carry deadlines and loops carry caps.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { MessageChannel, Worker } from "node:worker_threads";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { createPool } from "../src/index.js";
import { percentile } from "./stats.js";
import {
  CALL_TIMEOUT_MS,
  FIXTURE_ARGS,
  fixtureArgs,
  MODERN_PROTOCOL,
  openSdk,
  openSubject,
  type Era,
  type Subject,
  type SubjectName,
} from "./subjects.js";

/** Payload sizes of the busy-time figure: results of 10 B, 10 KB and 100 KB (`huge {bytes}`). */
export const RESULT_SIZES = { "10b": 10, "10kb": 10 * 1024, "100kb": 100 * 1024 } as const;
export type ResultSize = keyof typeof RESULT_SIZES;

const ECHO = { message: "hi" };

/** Runs `total` calls with `inFlight` of them outstanding at any time. Rejects on the first failure. */
export async function runConcurrent(subject: Subject, tool: string, args: Record<string, unknown>, total: number, inFlight: number): Promise<void> {
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < total) {
      started++;
      await subject.call(tool, args);
    }
  };
  const lanes: Promise<void>[] = [];
  for (let i = 0; i < Math.min(inFlight, total); i++) lanes.push(lane());
  await Promise.all(lanes);
}

export async function warmup(subject: Subject, calls: number): Promise<void> {
  await runConcurrent(subject, "echo", ECHO, calls, 8);
  await runConcurrent(subject, "huge", { bytes: RESULT_SIZES["100kb"] }, Math.ceil(calls / 4), 4);
}

/** Sequential echo calls: p50 and p99 of the per-call latency, in µs. */
export async function sequentialLatency(subject: Subject, calls: number): Promise<{ p50: number; p99: number }> {
  const samples = new Array<number>(calls);
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await subject.call("echo", ECHO);
    samples[i] = (performance.now() - t0) * 1000;
  }
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

/** CPU time a process has used so far (utime + stime from /proc/<pid>/stat), in ms. NaN if unreadable. */
export function processCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}
/** USER_HZ: 100 on every Linux this runs on. */
const CLOCK_TICKS = 100;

/**
 * `calls` calls of `tool` with `inFlight` outstanding: calls per second, and how busy the busiest
 * server process was over the window (% of one core) — near 100 % means the server is the bottleneck.
 */
export async function throughput(subject: Subject, tool: string, args: Record<string, unknown>, calls: number, inFlight: number): Promise<{ cps: number; serverCpu: number }> {
  const pids = await subject.serverPids();
  const cpu0 = pids.map(processCpuMs);
  const t0 = performance.now();
  await runConcurrent(subject, tool, args, calls, inFlight);
  const ms = performance.now() - t0;
  const serverCpu = Math.max(...pids.map((pid, i) => ((processCpuMs(pid) - cpu0[i]!) / ms) * 100));
  return { cps: calls / (ms / 1000), serverCpu };
}

const SCHEDSTAT = `/proc/${process.pid}/task/${process.pid}/schedstat`;

/**
 * CPU time the main thread has run, in ns (Linux: first field of its schedstat). Unlike event-loop
 * utilisation it does not count time the thread was ready but waiting for a CPU, which on a busy
 * 2-core machine is most of a cross-thread wake-up. NaN where unavailable.
 */
export function mainThreadCpuNs(): number {
  try {
    return Number(readFileSync(SCHEDSTAT, "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

/**
 * The busy figures' arguments: `huge` returns `bytes` characters, and `pad` sends as many the other way,
 * as the floor's bare worker does (floors.ts): a call of that size both ways. The fixture ignores `pad`.
 */
export function busyArgs(bytes: number): Record<string, unknown> {
  return { bytes, pad: "y".repeat(Math.max(0, bytes - 30)) };
}

/**
 * Main-thread busy time per call, in µs: event-loop utilisation over the window × the window ÷ calls
 * (`performance.eventLoopUtilization().active` is exactly that product); the main thread's own
 * CPU time per call over the same window; and the whole host's (every thread: main, the pool's
 * workers, V8's helpers; `process.cpuUsage()`), the figure a 2-core machine's throughput follows.
 */
export async function busyPerCall(subject: Subject, bytes: number, calls: number, inFlight: number): Promise<{ elu: number; cpu: number; host: number }> {
  const before = performance.eventLoopUtilization();
  const cpu0 = mainThreadCpuNs();
  const host0 = process.cpuUsage();
  await runConcurrent(subject, "huge", busyArgs(bytes), calls, inFlight);
  const host = process.cpuUsage(host0);
  const cpu1 = mainThreadCpuNs();
  const elu = performance.eventLoopUtilization(before);
  return { elu: (elu.active * 1000) / calls, cpu: (cpu1 - cpu0) / 1000 / calls, host: (host.user + host.system) / calls };
}

/** Resolution of the event-loop delay histogram. */
export const ELD_RESOLUTION_MS = 1;

/**
 * Event-loop delay on the main thread while 100 KB results stream in: p99 in ms. The histogram
 * records the interval between its timer's runs, so the sampling interval itself is subtracted:
 * what is left is how late the loop was.
 */
export async function eventLoopDelay(subject: Subject, calls: number, inFlight: number): Promise<{ p99: number; max: number }> {
  const h = monitorEventLoopDelay({ resolution: ELD_RESOLUTION_MS });
  h.enable();
  try {
    await runConcurrent(subject, "huge", { bytes: RESULT_SIZES["100kb"] }, calls, inFlight);
  } finally {
    h.disable();
  }
  const late = (ns: number) => Math.max(0, ns / 1e6 - ELD_RESOLUTION_MS);
  return { p99: late(h.percentile(99)), max: late(h.max) };
}

/** From nothing to the first successful call: config, spawn, initialize, tools, call. In ms. */
export async function connectTime(name: SubjectName): Promise<{ ms: number; subject: Subject }> {
  const t0 = performance.now();
  const subject = await openSubject(name);
  try {
    await subject.call("echo", ECHO);
  } catch (error) {
    await subject.close().catch(() => {});
    throw error;
  }
  return { ms: performance.now() - t0, subject };
}

/**
 * kill -9 of one pooled server (the pid from pool.stats()), then calls until one succeeds.
 * `nextSuccess`: kill → first successful call; `replicaBack`: kill → the killed connection is ready again.
 */
export async function recovery(subject: Subject, capMs: number): Promise<{ nextSuccess: number; replicaBack: number }> {
  const pool = subject.pool;
  if (!pool) throw new Error("recovery needs a pool");
  const conn = pool.stats().servers.fixture?.connections.find((c) => c.state === "ready" && c.pid !== undefined);
  if (!conn?.pid) throw new Error("no ready connection with a pid");
  let back: (t: number) => void;
  const replicaBack = new Promise<number>((resolve) => (back = resolve));
  const onReady = (event: { connectionId?: string }) => {
    if (event.connectionId === conn.id) back(performance.now());
  };
  pool.on("connection:ready", onReady);
  const until = performance.now() + capMs;
  try {
    const tKill = performance.now();
    process.kill(conn.pid, "SIGKILL");
    let nextSuccess = Number.NaN;
    while (performance.now() < until) {
      try {
        await subject.call("echo", ECHO);
        nextSuccess = performance.now() - tKill;
        break;
      } catch {
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const backAt = await Promise.race([
      replicaBack,
      new Promise<number>((resolve) => (timer = setTimeout(() => resolve(Number.NaN), Math.max(0, until - performance.now())))),
    ]);
    clearTimeout(timer);
    return { nextSuccess, replicaBack: backAt - tKill };
  } finally {
    pool.off("connection:ready", onReady);
  }
}

/** The first request of each era, as a client sends it: `initialize`, or `server/discover` with its `_meta` envelope. */
const OPENING_REQUEST: Record<Era, object> = {
  legacy: {
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "0.0.0" } },
  },
  modern: {
    jsonrpc: "2.0",
    id: 1,
    method: "server/discover",
    params: {
      _meta: {
        "io.modelcontextprotocol/protocolVersion": MODERN_PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": { name: "bench", version: "0.0.0" },
      },
    },
  },
};

/**
 * The server's own cold start: spawn the fixture of `era` and send its opening request (`initialize`,
 * or `server/discover` for 2026-07-28) on its stdin; ms until the answer's line arrives (an error
 * answer fails the round). No client library involved.
 */
export function serverColdStart(capMs: number, era: Era = "legacy"): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, fixtureArgs(era), { stdio: ["pipe", "pipe", "ignore"] });
    const method = (OPENING_REQUEST[era] as { method: string }).method;
    let buffered = "";
    let done = false;
    const finish = (error: Error | undefined, ms?: number) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.stdout.removeAllListeners("data");
      child.stdin.end();
      child.kill("SIGKILL");
      if (error) reject(error);
      else resolve(ms!);
    };
    const timer = setTimeout(() => finish(new Error(`${era} fixture did not answer ${method} within ${capMs} ms`)), capMs);
    child.once("error", (error) => finish(error));
    child.once("exit", () => finish(new Error(`${era} fixture exited before answering ${method}`)));
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffered += chunk;
      const end = buffered.indexOf("\n");
      if (end === -1) return;
      const ms = performance.now() - t0;
      const answer = buffered.slice(0, end);
      let ok = false;
      try {
        ok = "result" in (JSON.parse(answer) as object);
      } catch {
        // not JSON: reported below
      }
      finish(ok ? undefined : new Error(`${era} fixture answered ${method} with ${answer.slice(0, 200)}`), ms);
    });
    child.stdin.on("error", () => {});
    child.stdin.write(JSON.stringify(OPENING_REQUEST[era]) + "\n");
  });
}

/**
 * The floor under any pooled call: one round trip of a tiny message between the main thread and a
 * bare worker thread over a MessagePort (two cross-thread wake-ups). Sequential; p50 in µs.
 */
export async function portRoundTrip(messages: number): Promise<number> {
  const worker = new Worker(
    `const { parentPort } = require("node:worker_threads");
     parentPort.once("message", (port) => port.on("message", (m) => port.postMessage(m)));`,
    { eval: true },
  );
  const { port1, port2 } = new MessageChannel();
  try {
    worker.postMessage(port2, [port2]);
    const samples: number[] = [];
    const once = () => new Promise<void>((resolve) => port1.once("message", () => resolve()));
    for (let i = 0; i < messages + 20; i++) {
      const t0 = performance.now();
      const answered = once();
      port1.postMessage(i);
      await answered;
      if (i >= 20) samples.push((performance.now() - t0) * 1000);
    }
    return percentile(samples, 50);
  } finally {
    port1.close();
    await worker.terminate();
  }
}

/** Worker cap of the scaling figure. */
export const SCALING_MAX_WORKERS = 8;

export interface ScalingRun {
  /** Successful calls per second over the run. */
  cps: number;
  /** Share of the planned calls (sessions × calls per session) done within the window, in %. */
  donePct: number;
}

/**
 * `sessions` sessions at once, each making `callsPerSession` sequential echo calls and then closing,
 * on a session-scoped server within a cap of 8 workers. No call starts after `windowMs`, and a call
 * still waiting then ends with its deadline, so the run is bounded whatever the pool does.
 */
export async function poolScaling(sessions: number, callsPerSession: number, windowMs: number): Promise<ScalingRun> {
  const pool = await createPool({
    servers: {
      fixture: { command: process.execPath, args: FIXTURE_ARGS, scope: "session", toolCallTimeoutMs: CALL_TIMEOUT_MS, connectTimeoutMs: CALL_TIMEOUT_MS },
    },
    limits: { maxWorkers: SCALING_MAX_WORKERS, maxSessions: Math.max(200, sessions), acquireTimeoutMs: windowMs, maxQueue: 10_000 },
  });
  try {
    const t0 = performance.now();
    const until = t0 + windowMs;
    let done = 0;
    await Promise.all(
      Array.from({ length: sessions }, async (_, i) => {
        const s = pool.session(`user-${i}`);
        try {
          for (let c = 0; c < callsPerSession; c++) {
            const left = Math.ceil(until - performance.now());
            if (left <= 0) break;
            try {
              await s.callTool("fixture__echo", ECHO, { timeoutMs: left });
              done++;
            } catch (error) {
              if (performance.now() < until) throw error;
              break; // the window closed while this call waited
            }
          }
        } finally {
          await s.close();
        }
      }),
    );
    return { cps: done / ((performance.now() - t0) / 1000), donePct: (100 * done) / (sessions * callsPerSession) };
  } finally {
    await pool.close();
  }
}

/**
 * The same work with plain SDK clients, one per session (its own server process), at most 8 open
 * at once — what a careful user without a pool would do under the same cap. No client is opened
 * after `windowMs`.
 */
export async function sdkScaling(sessions: number, callsPerSession: number, windowMs: number): Promise<ScalingRun> {
  const t0 = performance.now();
  const until = t0 + windowMs;
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < sessions && performance.now() < until) {
      next++;
      const client = await openSdk();
      try {
        for (let c = 0; c < callsPerSession; c++) {
          await client.call("echo", ECHO);
          done++;
        }
      } finally {
        await client.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(SCALING_MAX_WORKERS, sessions) }, lane));
  return { cps: done / ((performance.now() - t0) / 1000), donePct: (100 * done) / (sessions * callsPerSession) };
}

export { CALL_TIMEOUT_MS };

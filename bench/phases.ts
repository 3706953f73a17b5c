/**
 * The phases of a run: long-lived clients measured in interleaved rounds (steady), fresh clients
 * (connect, recovery), fresh host processes (memory), and sessions under a worker cap (scaling).
 * Each scenario runs under a time cap; a failure is recorded and the run goes on.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FigureDef, Results } from "./report.js";
import {
  busyPerCall,
  connectTime,
  eventLoopDelay,
  poolScaling,
  portRoundTrip,
  recovery,
  RESULT_SIZES,
  runConcurrent,
  sdkScaling,
  sequentialLatency,
  serverColdStart,
  throughput,
  warmup,
  SCALING_MAX_WORKERS,
  type ResultSize,
} from "./scenarios.js";
import { MEMORY_BASELINE_SETTLE_MS, type Options, type Settings } from "./settings.js";
import { summarize, type Summary } from "./stats.js";
import { eraOf, isPool, openSubject, preloadClients, replicasOf, type FigureSubject, type Subject, type SubjectName } from "./subjects.js";
import { GATEWAY_SIZES, GATEWAY_SUBJECTS, gatewayWindow, openGatewaySubject, type GatewaySubject } from "./gateway.js";
import type { MemoryProbeResult } from "./memory-probe.js";
import { bareBusy, bareWorkerStart } from "./floors.js";

/** What the run's watchdog closes when it fires: every subject open at the time. */
export interface Closable {
  close(): Promise<void>;
}

export class Recorder {
  readonly #values = new Map<string, Map<FigureSubject, number[]>>();
  readonly errors: string[] = [];

  add(key: string, subject: FigureSubject, value: number): void {
    let bySubject = this.#values.get(key);
    if (!bySubject) this.#values.set(key, (bySubject = new Map()));
    let list = bySubject.get(subject);
    if (!list) bySubject.set(subject, (list = []));
    list.push(value);
  }

  summaries(key: string): Partial<Record<FigureSubject, Summary>> {
    const out: Partial<Record<FigureSubject, Summary>> = {};
    for (const [subject, values] of this.#values.get(key) ?? []) out[subject] = summarize(values);
    return out;
  }
}

class CapError extends Error {}

/** Runs one scenario under a time cap; a failure or overrun is recorded and the run goes on. */
async function capped<T>(rec: Recorder, label: string, capMs: number, fn: () => Promise<T>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      fn(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new CapError(`over its ${capMs} ms cap`)), capMs))),
    ]);
  } catch (error) {
    const code = (error as { code?: string }).code;
    rec.errors.push(`${label}: ${code ? `${code} ` : ""}${error instanceof Error ? error.message : String(error)}`);
    process.stderr.write(`  ! ${label} failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}

const RESULT_LABEL: Record<ResultSize, string> = { "10b": "10 B", "10kb": "10 KB", "100kb": "100 KB" };

const T0 = Date.now();
export function log(message: string): void {
  process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

/**
 * Who gets fresh clients in the connect and memory phases. Every fresh client starts servers and
 * workers (~0.5 s of CPU each here), so quick runs leave the 2- and 4-replica pools to full runs,
 * and smoke runs keep each era's baseline and one pool: there the point is that each phase works.
 */
function phaseSubjects(opts: Options): SubjectName[] {
  if (opts.mode === "full") return opts.subjects;
  const keep: SubjectName[] =
    opts.mode === "quick" ? ["sdk", "langchain", "pool-1", "sdk-v2@2026", "pool-1@2026"] : ["sdk", "pool-1", "sdk-v2@2026", "pool-1@2026"];
  return opts.subjects.filter((n) => keep.includes(n));
}

/** The subjects in a different order each round, so that drift on the machine spreads over all of them. */
function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

// ---------------------------------------------------------------------------- phases

/** Long-lived clients, all open at once, measured in interleaved rounds. */
export async function steadyPhase(opts: Options, s: Settings, rec: Recorder, open: Set<Closable>, reference: Results["reference"]): Promise<void> {
  const rtt: number[] = [];
  const bareRounds: Record<string, number[]> = {};
  const subjects: Subject[] = [];
  for (const name of opts.subjects) {
    const subject = await capped(rec, `open ${name}`, s.scenarioCapMs, () => openSubject(name));
    if (!subject) continue;
    open.add(subject);
    subjects.push(subject);
    await capped(rec, `warmup ${name}`, s.scenarioCapMs, () => warmup(subject, s.warmupCalls));
  }
  for (let r = 0; r < s.rounds; r++) {
    log(`steady: round ${r + 1}/${s.rounds}`);
    const p = await capped(rec, "port round trip", s.scenarioCapMs, () => portRoundTrip(s.latencyCalls));
    if (p !== undefined) rtt.push(p);
    for (const size of Object.keys(RESULT_SIZES) as ResultSize[]) {
      const bare = await capped(rec, `bare worker busy ${size}`, s.scenarioCapMs, () => bareBusy(RESULT_SIZES[size], s.busyCalls[size], s.busyInFlight));
      if (bare) {
        (bareRounds[`bare_busy_${size}_us`] ??= []).push(bare.elu);
        (bareRounds[`bare_cpu_${size}_us`] ??= []).push(bare.cpu);
        (bareRounds[`bare_host_cpu_${size}_us`] ??= []).push(bare.host);
      }
    }
    for (const subject of rotate(subjects, r)) {
      const n = subject.name;
      const cap = s.scenarioCapMs;
      const lat = await capped(rec, `${n} latency`, cap, () => sequentialLatency(subject, s.latencyCalls));
      if (lat) {
        rec.add("latency_p50_us", n, lat.p50);
        rec.add("latency_p99_us", n, lat.p99);
      }
      const tp = await capped(rec, `${n} throughput`, cap, () => throughput(subject, "echo", { message: "hi" }, s.throughputCalls, s.throughputInFlight));
      if (tp) {
        rec.add("throughput_64_cps", n, tp.cps);
        if (Number.isFinite(tp.serverCpu)) rec.add("server_cpu_64_pct", n, tp.serverCpu);
      }
      const burn = await capped(rec, `${n} throughput 1 ms-CPU tool`, cap, () => throughput(subject, "burn", { ms: 1 }, s.burnCalls, s.throughputInFlight));
      if (burn) {
        rec.add("throughput_burn_cps", n, burn.cps);
        if (Number.isFinite(burn.serverCpu)) rec.add("server_cpu_burn_pct", n, burn.serverCpu);
      }
      const big = { bytes: RESULT_SIZES["100kb"] };
      const sb = await capped(rec, `${n} throughput 100 KB`, cap, () => throughput(subject, "huge", big, s.serverBoundCalls, s.throughputInFlight));
      if (sb) {
        rec.add("throughput_serverbound_cps", n, sb.cps);
        if (Number.isFinite(sb.serverCpu)) rec.add("server_cpu_serverbound_pct", n, sb.serverCpu);
      }
      for (const size of Object.keys(RESULT_SIZES) as ResultSize[]) {
        const busy = await capped(rec, `${n} busy ${size}`, cap, () => busyPerCall(subject, RESULT_SIZES[size], s.busyCalls[size], s.busyInFlight));
        if (busy !== undefined) {
          rec.add(`busy_${size}_us`, n, busy.elu);
          if (Number.isFinite(busy.cpu)) rec.add(`cpu_${size}_us`, n, busy.cpu);
          rec.add(`host_cpu_${size}_us`, n, busy.host);
        }
      }
      const eld = await capped(rec, `${n} event-loop delay`, cap, () => eventLoopDelay(subject, s.eldCalls, s.eldInFlight));
      if (eld) rec.add("eld_p99_100kb_ms", n, eld.p99);
    }
  }
  for (const subject of subjects) {
    await capped(rec, `close ${subject.name}`, s.scenarioCapMs, () => subject.close());
    open.delete(subject);
  }
  reference.port_rtt_us = { label: "MessagePort round trip main ↔ bare worker, p50 (the floor a pooled call adds)", unit: "µs", ...summarize(rtt) };
  for (const size of Object.keys(RESULT_SIZES) as ResultSize[]) {
    const what = `bare worker, ${RESULT_LABEL[size]} each way, awaited`;
    if (bareRounds[`bare_busy_${size}_us`]) reference[`bare_busy_${size}_us`] = { label: `Main-thread busy per call, ${what}`, unit: "µs", ...summarize(bareRounds[`bare_busy_${size}_us`]!) };
    if (bareRounds[`bare_cpu_${size}_us`]) reference[`bare_cpu_${size}_us`] = { label: `Main-thread CPU per call, ${what}`, unit: "µs", ...summarize(bareRounds[`bare_cpu_${size}_us`]!) };
    if (bareRounds[`bare_host_cpu_${size}_us`]) reference[`bare_host_cpu_${size}_us`] = { label: `Host CPU per call (all threads), ${what}`, unit: "µs", ...summarize(bareRounds[`bare_host_cpu_${size}_us`]!) };
  }
}

/** Fresh clients: config to first call; for pools, then kill -9 a server and time the recovery. */
export async function connectPhase(opts: Options, s: Settings, rec: Recorder, open: Set<Closable>, reference: Results["reference"]): Promise<void> {
  const cold: number[] = [];
  const coldModern: number[] = [];
  const bareStart: number[] = [];
  const names = phaseSubjects(opts);
  const legacy = names.some((n) => eraOf(n) === "legacy");
  const modern = names.some((n) => eraOf(n) === "modern");
  // Module loading is not connecting: a client library loaded on first use is loaded before the clock starts.
  await capped(rec, "load client libraries", s.scenarioCapMs, () => preloadClients(names));
  for (let r = 0; r < s.connectRounds; r++) {
    log(`connect: round ${r + 1}/${s.connectRounds}`);
    if (legacy) {
      const c = await capped(rec, "server cold start", s.scenarioCapMs, () => serverColdStart(s.scenarioCapMs));
      if (c !== undefined) cold.push(c);
    }
    if (modern) {
      const m = await capped(rec, "2026-07-28 server cold start", s.scenarioCapMs, () => serverColdStart(s.scenarioCapMs, "modern"));
      if (m !== undefined) coldModern.push(m);
    }
    const b = await capped(rec, "bare worker start", s.scenarioCapMs, () => bareWorkerStart());
    if (b !== undefined) bareStart.push(b);
    for (const name of rotate(names, r)) {
      const opened = await capped(rec, `${name} connect`, s.scenarioCapMs, () => connectTime(name));
      if (!opened) continue;
      const subject = opened.subject;
      open.add(subject);
      rec.add("connect_ms", name, opened.ms);
      if (subject.pool) {
        await capped(rec, `${name} warm before kill`, s.scenarioCapMs, () => runConcurrent(subject, "echo", { message: "hi" }, 20, 4));
        const rc = await capped(rec, `${name} recovery`, s.scenarioCapMs, () => recovery(subject, s.scenarioCapMs - 1_000));
        if (rc) {
          rec.add("recovery_ms", name, rc.nextSuccess);
          rec.add("replica_back_ms", name, rc.replicaBack);
        }
      }
      await capped(rec, `close ${name}`, s.scenarioCapMs, () => subject.close());
      open.delete(subject);
    }
  }
  reference.bare_worker_start_ms = { label: "Bare worker start (new Worker with the pool's resourceLimits → its first message)", unit: "ms", ...summarize(bareStart) };
  if (legacy) reference.cold_start_ms = { label: "Server cold start (spawn → initialize answered, no client library)", unit: "ms", ...summarize(cold) };
  if (modern) {
    reference.cold_start_modern_ms = {
      label: "2026-07-28 server cold start (spawn → server/discover answered, no client library)",
      unit: "ms",
      ...summarize(coldModern),
    };
  }
}

const PROBE = fileURLToPath(new URL("./memory-probe.js", import.meta.url));

function runProbe(kind: SubjectName | "bare-worker", n: number, idleMs: number, capMs: number): Promise<MemoryProbeResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--expose-gc", PROBE, kind, String(n), String(idleMs)], { timeout: capMs, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`memory probe ${kind} ${n}: ${error.message} ${stderr.trim()}`));
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()!) as MemoryProbeResult);
      } catch {
        reject(new Error(`memory probe ${kind} ${n}: unreadable output ${JSON.stringify(stdout.slice(0, 200))}`));
      }
    });
  });
}

const meanMb = (kb: number[]): number => kb.reduce((a, b) => a + b, 0) / kb.length / 1024;

/**
 * Each subject in a fresh host process: RSS added per idle connection, with and without its server,
 * once the connections have idled `memoryIdleMs` (the figures that count) and 1 s after their first
 * call (start-up garbage not yet released; see memory-probe.ts).
 * The probes of a round run at once: they mostly sleep, and RSS does not depend on CPU contention.
 */
export async function memoryPhase(opts: Options, s: Settings, rec: Recorder, reference: Results["reference"]): Promise<void> {
  const bare: number[] = [];
  const bareEarly: number[] = [];
  // A smoke run's probes share the machine with its other phases (run.ts): twice the usual time to open.
  const cap = (opts.mode === "smoke" ? 2 : 1) * s.scenarioCapMs + MEMORY_BASELINE_SETTLE_MS + s.memoryIdleMs;
  for (let r = 0; r < s.memoryRounds; r++) {
    log(`memory: round ${r + 1}/${s.memoryRounds} (${s.memoryIdleMs / 1000} s idle)`);
    const floor = async () => {
      const n = s.memoryClients;
      const probe = await capped(rec, "bare worker memory", cap, () => runProbe("bare-worker", n, s.memoryIdleMs, cap - 1_000));
      if (!probe) return;
      bare.push((probe.hostAfterKb - probe.hostBeforeKb) / n / 1024);
      bareEarly.push((probe.hostEarlyKb - probe.hostBeforeKb) / n / 1024);
    };
    await Promise.all([
      floor(),
      ...phaseSubjects(opts).map(async (name) => {
        const n = isPool(name) ? replicasOf(name) : s.memoryClients;
        const probe = await capped(rec, `${name} memory`, cap, () => runProbe(name, n, s.memoryIdleMs, cap - 1_000));
        if (!probe) return;
        const serverMb = meanMb(probe.serverRssKb);
        const serverEarlyMb = meanMb(probe.serverRssEarlyKb);
        if (probe.serverRssKb.length !== n || !Number.isFinite(serverMb) || !Number.isFinite(serverEarlyMb)) {
          rec.errors.push(`${name} memory: expected ${n} server pids, read ${probe.serverRssKb.length} (${probe.serverRssKb.join(", ")})`);
          return;
        }
        const hostPerConnMb = (probe.hostAfterKb - probe.hostBeforeKb) / n / 1024;
        rec.add("rss_beyond_server_mb", name, hostPerConnMb);
        rec.add("rss_per_connection_mb", name, hostPerConnMb + serverMb);
        rec.add("rss_server_mb", name, serverMb);
        rec.add("rss_beyond_server_early_mb", name, (probe.hostEarlyKb - probe.hostBeforeKb) / n / 1024);
        rec.add("rss_server_early_mb", name, serverEarlyMb);
      }),
    ]);
  }
  const idle = `after ${s.memoryIdleMs / 1000} s idle`;
  reference.bare_worker_rss_mb = { label: `RSS per idle bare worker (the pool's resourceLimits) beyond the host, ${idle}`, unit: "MB", ...summarize(bare) };
  reference.bare_worker_rss_early_mb = { label: "  the same, 1 s after its start", unit: "MB", ...summarize(bareEarly) };
}

/**
 * Sessions on a session-scoped server, under a worker cap; and the same work with plain SDK clients.
 * Legacy fixture only: the same for 2026-07-28 would double this phase, the longest of a full run.
 */
export async function scalingPhase(opts: Options, s: Settings, rec: Recorder, defs: FigureDef[]): Promise<void> {
  for (const sessions of s.scalingSessions) {
    const key = `scaling_${sessions}_cps`;
    defs.push({ key, label: `Throughput with ${sessions} session${sessions === 1 ? "" : "s"} (≤ ${SCALING_MAX_WORKERS} workers)`, unit: "calls/s", better: "higher" });
    defs.push({ key: `${key}_done_pct`, label: `  calls done within the ${s.scalingWindowMs / 1000} s window, ${sessions} session${sessions === 1 ? "" : "s"}`, unit: "%", better: "info" });
    // Every session starts its own server (~0.6 s of CPU each here): only one session gets three rounds.
    const rounds = sessions > 1 ? 1 : s.scalingRounds;
    for (let r = 0; r < rounds; r++) {
      log(`scaling: ${sessions} sessions, round ${r + 1}/${rounds}`);
      const order = r % 2 === 0 ? (["sdk", "pool-1"] as const) : (["pool-1", "sdk"] as const);
      for (const who of order) {
        if (!opts.subjects.includes(who)) continue;
        const cap = s.scalingWindowMs + s.scenarioCapMs;
        const v = await capped(rec, `${who} scaling ${sessions}`, cap, () =>
          who === "sdk" ? sdkScaling(sessions, s.scalingCallsPerSession, s.scalingWindowMs) : poolScaling(sessions, s.scalingCallsPerSession, s.scalingWindowMs),
        );
        if (v) {
          rec.add(key, who, v.cps);
          rec.add(`${key}_done_pct`, who, v.donePct);
        }
      }
    }
  }
}


/**
 * The gateway scenario (issue 17, bench/gateway.ts): the gateway and the plain SDK v2 proxy, each in a
 * child process of its own, both open at once, measured in interleaved rounds: per result size, one
 * window of calls with 64 in flight from one downstream client.
 */
export async function gatewayPhase(opts: Options, s: Settings, rec: Recorder, open: Set<Closable>): Promise<void> {
  // Both start at once (not measured); a smoke run's share the machine with its other phases (run.ts): twice the time to open.
  const openCap = (opts.mode === "smoke" ? 2 : 1) * s.scenarioCapMs;
  const opened = await Promise.all(
    GATEWAY_SUBJECTS.map(async (name) => {
      const subject = await capped(rec, `open ${name}`, openCap, () => openGatewaySubject(name, openCap - 1_000));
      if (subject) open.add(subject);
      return subject;
    }),
  );
  const subjects = opened.filter((x): x is GatewaySubject => x !== undefined);
  for (const subject of subjects) {
    await capped(rec, `warmup ${subject.name}`, s.scenarioCapMs, async () => {
      for (const size of GATEWAY_SIZES) await gatewayWindow(subject, size, s.gatewayWarmupCalls, s.throughputInFlight);
    });
  }
  for (let r = 0; r < s.gatewayRounds; r++) {
    log(`gateway: round ${r + 1}/${s.gatewayRounds}`);
    for (const subject of rotate(subjects, r)) {
      for (const size of GATEWAY_SIZES) {
        const w = await capped(rec, `${subject.name} ${size}`, s.scenarioCapMs, () => gatewayWindow(subject, size, s.gatewayCalls[size], s.throughputInFlight));
        if (!w) continue;
        rec.add(`gw_throughput_${size}_cps`, subject.name, w.cps);
        if (Number.isFinite(w.mainCpu)) rec.add(`gw_cpu_${size}_us`, subject.name, w.mainCpu);
        if (Number.isFinite(w.processCpu)) rec.add(`gw_process_cpu_${size}_us`, subject.name, w.processCpu);
        rec.add(`gw_p50_${size}_ms`, subject.name, w.p50);
        rec.add(`gw_p99_${size}_ms`, subject.name, w.p99);
      }
    }
  }
  for (const subject of subjects) {
    await capped(rec, `close ${subject.name}`, s.scenarioCapMs, () => subject.close());
    open.delete(subject);
  }
}

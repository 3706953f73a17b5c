/**
 * The benchmark: the plain SDK client, the LangChain MCP adapters and the pool (1, 2, 4 replicas)
 * making the same calls to the same fixture server over stdio.
 *
 *   node dist/bench/run.js [--quick | --smoke] [--out DIR] [--only steady,connect,memory,scaling] [--subjects sdk,pool-1,...]
 *
 * Prints a table, writes DIR/latest.json and DIR/latest.md (DIR defaults to bench/results).
 * Bounded: a watchdog ends the run, every scenario has a time cap, every call a deadline.
 */
import { execFile } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { renderMarkdown, renderText, evaluateTargets, withRatios, type Figure, type FigureDef, type Results } from "./report.js";
import {
  busyPerCall,
  connectTime,
  eventLoopDelay,
  poolScaling,
  recovery,
  RESULT_SIZES,
  runConcurrent,
  sdkScaling,
  sequentialLatency,
  serverColdStart,
  throughput,
  warmup,
  ELD_RESOLUTION_MS,
  SCALING_MAX_WORKERS,
  type ResultSize,
} from "./scenarios.js";
import { summarize, type Summary } from "./stats.js";
import { openSubject, replicasOf, SUBJECTS, type Subject, type SubjectName } from "./subjects.js";
import type { MemoryProbeResult } from "./memory-probe.js";

// ---------------------------------------------------------------------------- settings

interface Settings {
  rounds: number;
  warmupCalls: number;
  latencyCalls: number;
  throughputCalls: number;
  throughputInFlight: number;
  serverBoundCalls: number;
  busyCalls: Record<ResultSize, number>;
  busyInFlight: number;
  eldCalls: number;
  eldInFlight: number;
  connectRounds: number;
  memoryRounds: number;
  /** Connections per memory probe for sdk and langchain (pools use their own replica count). */
  memoryClients: number;
  scalingSessions: number[];
  scalingCallsPerSession: number;
  scalingRounds: number;
  scenarioCapMs: number;
  watchdogMs: number;
}

const SETTINGS: Record<"full" | "quick" | "smoke", Settings> = {
  full: {
    rounds: 5, warmupCalls: 200, latencyCalls: 500, throughputCalls: 3000, throughputInFlight: 64, serverBoundCalls: 400,
    busyCalls: { "10b": 1000, "10kb": 1000, "100kb": 300 }, busyInFlight: 16, eldCalls: 400, eldInFlight: 16,
    connectRounds: 5, memoryRounds: 3, memoryClients: 4,
    scalingSessions: [1, 10, 100], scalingCallsPerSession: 20, scalingRounds: 3,
    scenarioCapMs: 60_000, watchdogMs: 9 * 60_000,
  },
  quick: {
    rounds: 3, warmupCalls: 100, latencyCalls: 200, throughputCalls: 1000, throughputInFlight: 64, serverBoundCalls: 150,
    busyCalls: { "10b": 300, "10kb": 300, "100kb": 100 }, busyInFlight: 16, eldCalls: 150, eldInFlight: 16,
    connectRounds: 3, memoryRounds: 1, memoryClients: 2,
    scalingSessions: [1, 10, 100], scalingCallsPerSession: 5, scalingRounds: 1,
    scenarioCapMs: 30_000, watchdogMs: 100_000,
  },
  smoke: {
    rounds: 1, warmupCalls: 10, latencyCalls: 20, throughputCalls: 100, throughputInFlight: 64, serverBoundCalls: 20,
    busyCalls: { "10b": 20, "10kb": 20, "100kb": 10 }, busyInFlight: 16, eldCalls: 20, eldInFlight: 16,
    connectRounds: 1, memoryRounds: 1, memoryClients: 1,
    scalingSessions: [1, 2], scalingCallsPerSession: 2, scalingRounds: 1,
    scenarioCapMs: 15_000, watchdogMs: 50_000,
  },
};

const PHASES = ["steady", "connect", "memory", "scaling"] as const;
type Phase = (typeof PHASES)[number];

interface Options {
  mode: keyof typeof SETTINGS;
  out: string;
  phases: Set<Phase>;
  subjects: SubjectName[];
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    if (i === -1) return undefined;
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Error(`${flag} needs a value`);
    return v;
  };
  const known = new Set(["--quick", "--smoke", "--out", "--only", "--subjects"]);
  for (const a of argv) if (a.startsWith("--") && !known.has(a)) throw new Error(`unknown option ${a}`);
  const mode = argv.includes("--smoke") ? "smoke" : argv.includes("--quick") ? "quick" : "full";
  const out = resolve(value("--out") ?? fileURLToPath(new URL("../../bench/results/", import.meta.url)));
  const only = value("--only")?.split(",") ?? [...PHASES];
  for (const p of only) if (!(PHASES as readonly string[]).includes(p)) throw new Error(`unknown phase ${p} (expected ${PHASES.join(", ")})`);
  const subjects = (value("--subjects")?.split(",") ?? [...SUBJECTS]) as SubjectName[];
  for (const s of subjects) if (!(SUBJECTS as readonly string[]).includes(s)) throw new Error(`unknown subject ${s} (expected ${SUBJECTS.join(", ")})`);
  if (!subjects.includes("sdk")) subjects.unshift("sdk"); // every ratio needs the baseline
  return { mode, out, phases: new Set(only as Phase[]), subjects };
}

// ---------------------------------------------------------------------------- bookkeeping

const FIGURES: FigureDef[] = [
  { key: "latency_p50_us", label: "Sequential echo latency p50", unit: "µs", better: "lower" },
  { key: "latency_p99_us", label: "Sequential echo latency p99", unit: "µs", better: "lower" },
  { key: "throughput_64_cps", label: "Throughput, echo, 64 in flight", unit: "calls/s", better: "higher" },
  { key: "server_cpu_64_pct", label: "Busiest server's CPU during echo throughput", unit: "%", better: "info" },
  { key: "throughput_serverbound_cps", label: "Throughput, 100 KB results, 64 in flight", unit: "calls/s", better: "higher" },
  { key: "server_cpu_serverbound_pct", label: "Busiest server's CPU during 100 KB throughput", unit: "%", better: "info" },
  { key: "busy_10b_us", label: "Main-thread busy per call, 10 B result", unit: "µs", better: "lower" },
  { key: "busy_10kb_us", label: "Main-thread busy per call, 10 KB result", unit: "µs", better: "lower" },
  { key: "busy_100kb_us", label: "Main-thread busy per call, 100 KB result", unit: "µs", better: "lower" },
  { key: "cpu_10b_us", label: "Main-thread CPU per call, 10 B result", unit: "µs", better: "lower" },
  { key: "cpu_10kb_us", label: "Main-thread CPU per call, 10 KB result", unit: "µs", better: "lower" },
  { key: "cpu_100kb_us", label: "Main-thread CPU per call, 100 KB result", unit: "µs", better: "lower" },
  { key: "eld_p99_100kb_ms", label: "Event-loop delay p99 under 100 KB load", unit: "ms", better: "lower" },
  { key: "connect_ms", label: "Connect (config → first successful call)", unit: "ms", better: "lower" },
  { key: "recovery_ms", label: "Recovery after kill -9 (→ next success)", unit: "ms", better: "lower" },
  { key: "replica_back_ms", label: "Killed connection ready again", unit: "ms", better: "lower" },
  { key: "rss_per_connection_mb", label: "RSS per idle connection, server included", unit: "MB", better: "lower" },
  { key: "rss_beyond_server_mb", label: "RSS per idle connection beyond the server", unit: "MB", better: "lower" },
];

class Recorder {
  readonly #values = new Map<string, Map<SubjectName, number[]>>();
  readonly errors: string[] = [];

  add(key: string, subject: SubjectName, value: number): void {
    let bySubject = this.#values.get(key);
    if (!bySubject) this.#values.set(key, (bySubject = new Map()));
    let list = bySubject.get(subject);
    if (!list) bySubject.set(subject, (list = []));
    list.push(value);
  }

  summaries(key: string): Partial<Record<SubjectName, Summary>> {
    const out: Partial<Record<SubjectName, Summary>> = {};
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

const T0 = Date.now();
function log(message: string): void {
  process.stderr.write(`[${((Date.now() - T0) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

/** Smoke runs start fresh clients (connect, memory) for the baseline and one pool only: the point there is that each phase works. */
function phaseSubjects(opts: Options): SubjectName[] {
  return opts.mode === "smoke" ? opts.subjects.filter((n) => n === "sdk" || n === "pool-1") : opts.subjects;
}

/** The subjects in a different order each round, so that drift on the machine spreads over all of them. */
function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

// ---------------------------------------------------------------------------- phases

/** Long-lived clients, all open at once, measured in interleaved rounds. */
async function steadyPhase(opts: Options, s: Settings, rec: Recorder, open: Set<Subject>): Promise<void> {
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
}

/** Fresh clients: config to first call; for pools, then kill -9 a server and time the recovery. */
async function connectPhase(opts: Options, s: Settings, rec: Recorder, open: Set<Subject>, reference: Results["reference"]): Promise<void> {
  const cold: number[] = [];
  for (let r = 0; r < s.connectRounds; r++) {
    log(`connect: round ${r + 1}/${s.connectRounds}`);
    const c = await capped(rec, "server cold start", s.scenarioCapMs, () => serverColdStart(s.scenarioCapMs));
    if (c !== undefined) cold.push(c);
    for (const name of rotate(phaseSubjects(opts), r)) {
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
  reference.cold_start_ms = { label: "Server cold start (spawn → initialize answered, no client library)", unit: "ms", ...summarize(cold) };
}

const PROBE = fileURLToPath(new URL("./memory-probe.js", import.meta.url));

function runProbe(kind: string, n: number, capMs: number): Promise<MemoryProbeResult> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["--expose-gc", PROBE, kind, String(n)], { timeout: capMs, killSignal: "SIGKILL" }, (error, stdout, stderr) => {
      if (error) return reject(new Error(`memory probe ${kind} ${n}: ${error.message} ${stderr.trim()}`));
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()!) as MemoryProbeResult);
      } catch {
        reject(new Error(`memory probe ${kind} ${n}: unreadable output ${JSON.stringify(stdout.slice(0, 200))}`));
      }
    });
  });
}

/** Each subject in a fresh host process: RSS added per idle connection, with and without its server. */
async function memoryPhase(opts: Options, s: Settings, rec: Recorder): Promise<void> {
  for (let r = 0; r < s.memoryRounds; r++) {
    log(`memory: round ${r + 1}/${s.memoryRounds}`);
    for (const name of rotate(phaseSubjects(opts), r)) {
      const isPool = name.startsWith("pool-");
      const n = isPool ? replicasOf(name) : s.memoryClients;
      const probe = await capped(rec, `${name} memory`, s.scenarioCapMs, () => runProbe(isPool ? "pool" : name, n, s.scenarioCapMs - 1_000));
      if (!probe) continue;
      const hostPerConnMb = (probe.hostAfterKb - probe.hostBeforeKb) / n / 1024;
      const serverMb = probe.serverRssKb.reduce((a, b) => a + b, 0) / probe.serverRssKb.length / 1024;
      if (probe.serverRssKb.length !== n || !Number.isFinite(serverMb)) {
        rec.errors.push(`${name} memory: expected ${n} server pids, read ${probe.serverRssKb.length} (${probe.serverRssKb.join(", ")})`);
        continue;
      }
      rec.add("rss_beyond_server_mb", name, hostPerConnMb);
      rec.add("rss_per_connection_mb", name, hostPerConnMb + serverMb);
    }
  }
}

/** Sessions on a session-scoped server, under a worker cap; and the same work with plain SDK clients. */
async function scalingPhase(opts: Options, s: Settings, rec: Recorder, defs: FigureDef[]): Promise<void> {
  for (const sessions of s.scalingSessions) {
    const key = `scaling_${sessions}_cps`;
    defs.push({ key, label: `Throughput with ${sessions} session${sessions === 1 ? "" : "s"} (≤ ${SCALING_MAX_WORKERS} workers)`, unit: "calls/s", better: "higher" });
    for (let r = 0; r < s.scalingRounds; r++) {
      log(`scaling: ${sessions} sessions, round ${r + 1}/${s.scalingRounds}`);
      const order = r % 2 === 0 ? (["sdk", "pool-1"] as const) : (["pool-1", "sdk"] as const);
      for (const who of order) {
        if (!opts.subjects.includes(who)) continue;
        const cap = s.scenarioCapMs * 2;
        const v = await capped(rec, `${who} scaling ${sessions}`, cap, () =>
          who === "sdk" ? sdkScaling(sessions, s.scalingCallsPerSession) : poolScaling(sessions, s.scalingCallsPerSession),
        );
        if (v !== undefined) rec.add(key, who, v);
      }
    }
  }
}

// ---------------------------------------------------------------------------- main

const LOAD_AT_START = loadavg().map((v) => Math.round(v * 100) / 100);

function machine(): Results["machine"] {
  const list = cpus();
  return {
    cpu: list[0]?.model.trim() ?? "unknown",
    cores: list.length,
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    totalMemMb: Math.round(totalmem() / 1024 / 1024),
    loadavgAtStart: LOAD_AT_START,
    loadavg: loadavg().map((v) => Math.round(v * 100) / 100),
    date: new Date().toISOString(),
  };
}

function notes(s: Settings): string[] {
  return [
    "Subjects: the plain `@modelcontextprotocol/sdk` Client on the main thread; `@langchain/mcp-adapters` MultiServerMCPClient (getTools(), then tool.invoke(args)); the pool with 1, 2 and 4 shared replicas (`connections: { min: N, max: N }`). Same fixture server (test/fixtures/server.ts) over stdio for all.",
    `Rounds: ${s.rounds} interleaved rounds (subjects in rotating order, all open at once) after ${s.warmupCalls} warm-up calls each.`,
    `Latency: ${s.latencyCalls} sequential \`echo\` calls per round; p50/p99 of the round.`,
    `Throughput: ${s.throughputCalls} \`echo\` calls per round with ${s.throughputInFlight} in flight; the 100 KB row uses ${s.serverBoundCalls} \`huge {bytes: 102400}\` calls.`,
    `Main-thread busy per call: \`performance.eventLoopUtilization()\` over the window (active time = utilisation × window) ÷ calls; \`huge {bytes}\` with ${s.busyInFlight} in flight (${Object.entries(s.busyCalls).map(([k, v]) => `${v} calls at ${k}`).join(", ")}).`,
    "Main-thread CPU per call: the same windows, measured as the main thread's own CPU time (schedstat of its task in /proc): unlike event-loop utilisation, it leaves out time the thread was ready to run but waiting for a core, which grows with everything else running on the machine.",
    `Event-loop delay: \`monitorEventLoopDelay({ resolution: ${ELD_RESOLUTION_MS} })\` on the main thread during ${s.eldCalls} \`huge\` 100 KB calls with ${s.eldInFlight} in flight; p99 minus the ${ELD_RESOLUTION_MS} ms sampling interval (how late the loop was).`,
    `Connect: a fresh client from config to the first successful \`echo\` (${s.connectRounds} rounds). Recovery: kill -9 of a pooled server (pid from pool.stats()), then \`echo\` until one succeeds; "ready again" is the killed connection's next connection:ready event. Cold start: spawn the fixture and time its answer to \`initialize\`, with no client library.`,
    `Memory: each subject in a fresh host process (\`--expose-gc\`), RSS before and after opening idle connections (${s.memoryClients} clients for SDK/LangChain, N replicas for pool ×N; one call each, then 1 s idle), plus each server's VmRSS from /proc/<pid>/status; ${s.memoryRounds} round(s).`,
    `Scaling: ${s.scalingSessions.join(", ")} sessions at once, each ${s.scalingCallsPerSession} sequential \`echo\` calls then close, on a \`scope: "session"\` server with maxWorkers ${SCALING_MAX_WORKERS} (pool column); the SDK column opens one Client (own server) per session, at most ${SCALING_MAX_WORKERS} at once. Includes every server start.`,
  ];
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const s = SETTINGS[opts.mode];
  const started = Date.now();
  const rec = new Recorder();
  const open = new Set<Subject>();
  const defs = [...FIGURES];
  const reference: Results["reference"] = {};
  let complete = false;

  const build = (): Results => {
    const figures: Record<string, Figure> = {};
    for (const def of defs) {
      const subjects = rec.summaries(def.key);
      if (Object.keys(subjects).length > 0) figures[def.key] = withRatios(def, subjects);
    }
    return {
      mode: opts.mode,
      machine: machine(),
      settings: { ...s, subjects: opts.subjects, phases: [...opts.phases] },
      durationMs: Date.now() - started,
      complete,
      figures,
      reference,
      targets: evaluateTargets(figures, reference),
      errors: rec.errors,
      notes: notes(s),
    };
  };
  const write = (results: Results) => {
    mkdirSync(opts.out, { recursive: true });
    writeFileSync(join(opts.out, "latest.json"), JSON.stringify(results, null, 2) + "\n");
    writeFileSync(join(opts.out, "latest.md"), renderMarkdown(results));
  };

  // The overall bound: whatever hangs, the run ends, with what it has, and closes what it can.
  const watchdog = setTimeout(() => {
    rec.errors.push(`watchdog: the run exceeded ${s.watchdogMs} ms and was stopped`);
    try {
      write(build());
    } catch {
      // nothing more to do
    }
    log(`bench: watchdog fired after ${s.watchdogMs} ms`);
    const closing = [...open].map((subject) => subject.close().catch(() => {}));
    void Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 3_000))]).then(() => process.exit(2));
  }, s.watchdogMs);

  log(`bench: ${opts.mode} mode, subjects ${opts.subjects.join(", ")}, phases ${[...opts.phases].join(", ")}`);
  if (opts.phases.has("steady")) await steadyPhase(opts, s, rec, open);
  if (opts.phases.has("connect")) await connectPhase(opts, s, rec, open, reference);
  if (opts.phases.has("memory")) await memoryPhase(opts, s, rec);
  if (opts.phases.has("scaling")) await scalingPhase(opts, s, rec, defs);
  complete = true;
  clearTimeout(watchdog);

  const results = build();
  write(results);
  process.stdout.write(renderText(results) + "\n");
  log(`bench: done in ${((Date.now() - started) / 1000).toFixed(1)} s; wrote ${join(opts.out, "latest.json")} and latest.md`);

  // Everything was closed, so the process ends by itself; if something was left open, say what.
  const leak = setTimeout(() => {
    log(`bench: still running 5 s after the end; open resources: ${process.getActiveResourcesInfo().join(", ")}`);
    process.exit(1);
  }, 5_000);
  leak.unref();
}

main().catch((error: unknown) => {
  log(`bench: ${error instanceof Error ? error.stack : String(error)}`);
  process.exit(1);
});


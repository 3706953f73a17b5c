/**
 * The benchmark: the plain SDK client, the LangChain MCP adapters and the pool (1, 2, 4 replicas)
 * making the same calls to the same legacy fixture server over stdio; and the plain v2 client and
 * the pool (1, 2 replicas) on the 2026-07-28 fixture, which serves the same tools (subjects.ts); and
 * the gateway against a plain SDK v2 proxy, each in a child process, before the same fixture (gateway.ts).
 *
 *   node dist/bench/run.js [--quick | --smoke] [--out DIR] [--only steady,connect,memory,scaling,gateway]
 *                          [--subjects sdk,langchain,pool-1,pool-2,pool-4,sdk-v2@2026,pool-1@2026,pool-2@2026]
 *
 * Prints a table, writes DIR/latest.json and DIR/latest.md (DIR defaults to bench/results).
 * Bounded: a watchdog ends the run, every scenario has a time cap, every call a deadline.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join } from "node:path";
import { renderMarkdown, renderText, evaluateTargets, withFloors, withRatios, type Figure, type FigureDef, type Results } from "./report.js";
import { connectPhase, gatewayPhase, type Closable, log, memoryPhase, Recorder, scalingPhase, steadyPhase } from "./phases.js";
import { ELD_RESOLUTION_MS, SCALING_MAX_WORKERS } from "./scenarios.js";
import { parseArgs, SETTINGS, type Settings } from "./settings.js";

// ---------------------------------------------------------------------------- figures

const FIGURES: FigureDef[] = [
  { key: "latency_p50_us", label: "Sequential echo latency p50", unit: "µs", better: "lower" },
  { key: "latency_p99_us", label: "Sequential echo latency p99", unit: "µs", better: "lower" },
  { key: "throughput_64_cps", label: "Throughput, echo, 64 in flight", unit: "calls/s", better: "higher" },
  { key: "server_cpu_64_pct", label: "Busiest server's CPU during echo throughput", unit: "%", better: "info" },
  { key: "throughput_serverbound_cps", label: "Throughput, 100 KB results, 64 in flight", unit: "calls/s", better: "higher" },
  { key: "server_cpu_serverbound_pct", label: "Busiest server's CPU during 100 KB throughput", unit: "%", better: "info" },
  { key: "throughput_burn_cps", label: "Throughput, 1 ms-CPU tool (`burn`), 64 in flight", unit: "calls/s", better: "higher" },
  { key: "server_cpu_burn_pct", label: "Busiest server's CPU during the 1 ms-CPU tool", unit: "%", better: "info" },
  { key: "host_cpu_10b_us", label: "Host CPU per call (all threads), 10 B each way", unit: "µs", better: "lower" },
  { key: "host_cpu_10kb_us", label: "Host CPU per call (all threads), 10 KB each way", unit: "µs", better: "lower" },
  { key: "host_cpu_100kb_us", label: "Host CPU per call (all threads), 100 KB each way", unit: "µs", better: "lower" },
  { key: "busy_10b_us", label: "Main-thread busy per call, 10 B each way", unit: "µs", better: "lower" },
  { key: "busy_10kb_us", label: "Main-thread busy per call, 10 KB each way", unit: "µs", better: "lower" },
  { key: "busy_100kb_us", label: "Main-thread busy per call, 100 KB each way", unit: "µs", better: "lower" },
  { key: "cpu_10b_us", label: "Main-thread CPU per call, 10 B each way", unit: "µs", better: "lower" },
  { key: "cpu_10kb_us", label: "Main-thread CPU per call, 10 KB each way", unit: "µs", better: "lower" },
  { key: "cpu_100kb_us", label: "Main-thread CPU per call, 100 KB each way", unit: "µs", better: "lower" },
  { key: "eld_p99_100kb_ms", label: "Event-loop delay p99 under 100 KB load", unit: "ms", better: "lower" },
  { key: "connect_ms", label: "Connect (config → first successful call)", unit: "ms", better: "lower" },
  { key: "recovery_ms", label: "Recovery after kill -9 (→ next success)", unit: "ms", better: "lower" },
  { key: "replica_back_ms", label: "Killed connection ready again", unit: "ms", better: "lower" },
  { key: "gw_throughput_10b_cps", label: "Gateway scenario: throughput, 10 B results, 64 in flight", unit: "calls/s", better: "higher" },
  { key: "gw_throughput_100kb_cps", label: "Gateway scenario: throughput, 100 KB results, 64 in flight", unit: "calls/s", better: "higher" },
  { key: "gw_cpu_10b_us", label: "Gateway scenario: main-thread CPU per call, 10 B", unit: "µs", better: "lower" },
  { key: "gw_cpu_100kb_us", label: "Gateway scenario: main-thread CPU per call, 100 KB", unit: "µs", better: "lower" },
  { key: "gw_process_cpu_10b_us", label: "Gateway scenario: process CPU per call (all threads), 10 B", unit: "µs", better: "lower" },
  { key: "gw_process_cpu_100kb_us", label: "Gateway scenario: process CPU per call (all threads), 100 KB", unit: "µs", better: "lower" },
  { key: "gw_p50_10b_ms", label: "Gateway scenario: latency p50, 10 B, 64 in flight", unit: "ms", better: "lower" },
  { key: "gw_p99_10b_ms", label: "Gateway scenario: latency p99, 10 B, 64 in flight", unit: "ms", better: "lower" },
  { key: "gw_p50_100kb_ms", label: "Gateway scenario: latency p50, 100 KB, 64 in flight", unit: "ms", better: "lower" },
  { key: "gw_p99_100kb_ms", label: "Gateway scenario: latency p99, 100 KB, 64 in flight", unit: "ms", better: "lower" },
];

/** The memory figures name how long the connections had idled, which differs between modes. */
function memoryFigures(s: Settings): FigureDef[] {
  const idle = `after ${s.memoryIdleMs / 1000} s idle`;
  return [
    { key: "rss_per_connection_mb", label: `RSS per idle connection, server included, ${idle}`, unit: "MB", better: "lower" },
    { key: "rss_beyond_server_mb", label: `RSS per idle connection beyond the server, ${idle}`, unit: "MB", better: "lower" },
    { key: "rss_server_mb", label: `RSS of one idle server process (VmRSS), ${idle}`, unit: "MB", better: "info" },
    { key: "rss_beyond_server_early_mb", label: "  the same beyond the server, 1 s after the first call", unit: "MB", better: "info" },
    { key: "rss_server_early_mb", label: "  one server process, 1 s after the first call", unit: "MB", better: "info" },
  ];
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
    "Subjects, legacy fixture (test/fixtures/server.ts, v1 SDK server, `initialize` handshake) over stdio: the plain `@modelcontextprotocol/sdk` (v1) Client on the main thread; `@langchain/mcp-adapters` MultiServerMCPClient (getTools(), then tool.invoke(args)); the pool with 1, 2 and 4 shared replicas (`connections: { min: N, max: N }`, default `protocol: \"auto\"`).",
    `Subjects, 2026-07-28 fixture (test/fixtures/modern-server.ts, v2 SDK server, modern era only, same tools) over stdio: \`sdk-v2@2026\`, the plain \`@modelcontextprotocol/client\` (v2) Client with \`versionNegotiation: { mode: { pin: "2026-07-28" } }\` over v2's StdioClientTransport on the main thread (its connect checks the pin with \`server/discover\` on a short-lived second server process first, as v2 does on its own stdio transport); \`pool-1@2026\`, \`pool-2@2026\`, the pool with 1 and 2 replicas and \`protocol: "2026-07-28"\`. Their ratios (“÷ SDK v2”) are to sdk-v2@2026 in the same run. Scaling is measured on the legacy fixture only (doing it on both would double the longest phase).`,
    `Rounds: ${s.rounds} interleaved rounds (subjects in rotating order, all open at once) after ${s.warmupCalls} warm-up calls each.`,
    `Latency: ${s.latencyCalls} sequential \`echo\` calls per round; p50/p99 of the round.`,
    `Throughput: ${s.throughputCalls} \`echo\` calls per round with ${s.throughputInFlight} in flight; the 100 KB row uses ${s.serverBoundCalls} \`huge {bytes: 102400}\` calls.`,
    `Main-thread busy per call: \`performance.eventLoopUtilization()\` over the window (active time = utilisation × window) ÷ calls; \`huge {bytes, pad}\` (a result of \`bytes\` characters, and about as many sent in \`pad\`) with ${s.busyInFlight} in flight (${Object.entries(s.busyCalls).map(([k, v]) => `${v} calls at ${k}`).join(", ")}).`,
    "Host CPU per call: the same windows, every thread of the host process (`process.cpuUsage()`: main thread, pool workers, V8's helpers) ÷ calls; the figure throughput follows on 2 cores.",
    `Replicas: ${s.burnCalls} calls of the fixture's \`burn\` tool (1 ms of the server's CPU time each, \`--bench-tools\`) with ${s.throughputInFlight} in flight; the floor is min(cores, replicas) × the plain client's (one server).`,
    "Floors, measured in the same run (bench/floors.ts): a bare worker thread with the pool's resourceLimits answering over a MessagePort, the main thread awaiting each answer through a promise (busy, CPU: 10 B / 10 KB / 100 KB each way, same calls and in-flight as the pool's windows); its start (connect floor = the plain client's connect + that); its RSS beyond the host once idle (memory probe `bare-worker`, same idle time); the port round trip (sequential p50 floor = the plain client's p50 + that); the plain client's own host CPU and throughput.",
    "Main-thread CPU per call: the same windows, measured as the main thread's own CPU time (schedstat of its task in /proc): unlike event-loop utilisation, it leaves out time the thread was ready to run but waiting for a core, which grows with everything else running on the machine.",
    `Event-loop delay: \`monitorEventLoopDelay({ resolution: ${ELD_RESOLUTION_MS} })\` on the main thread during ${s.eldCalls} \`huge\` 100 KB calls with ${s.eldInFlight} in flight; p99 minus the ${ELD_RESOLUTION_MS} ms sampling interval (how late the loop was).`,
    `Connect: a fresh client from config to the first successful \`echo\` (${s.connectRounds} rounds). Recovery: kill -9 of a pooled server (pid from pool.stats()), then \`echo\` until one succeeds; "ready again" is the killed connection's next connection:ready event. Cold start: spawn the fixture and time its answer to \`initialize\`, with no client library.`,
    `Memory: each subject in a fresh host process (\`--expose-gc\`), RSS before and after opening idle connections (${s.memoryClients} clients for the plain clients and LangChain, N replicas for a pool of N, on its own fixture; one call each), plus each server's VmRSS from /proc/<pid>/status; ${s.memoryRounds} round(s). Sampled 1 s after the first call and again after ${s.memoryIdleMs / 1000} s idle, which is the figure that counts: every V8 isolate (host main thread, pool worker, server) keeps its start-up garbage until its memory reducer runs, 8 s after it goes quiet. The host's main thread gets a last-resort GC (\`gc({ flavor: "last-resort" })\`) before each sample so that it does not count; pool workers and servers are left to V8.`,
    "Telemetry: no OpenTelemetry provider is registered in this benchmark, so the pool's figures are with telemetry off. With the SDK registered (bench/otel.ts; `BENCH_OTEL=1 node dist/bench/thread-cpu.js`, and `node dist/bench/telemetry-cost.js`), a 10 B echo call cost about 30 µs more main-thread CPU (measured 2026-11-26 under heavy load; docs/performance.md, \"Telemetry\").",
    `Gateway scenario (issue 17, bench/gateway.ts): one downstream \`@modelcontextprotocol/sdk\` (v1) Client over Streamable HTTP (2025 era) → either the gateway (\`serveGateway\` over a one-replica pool of the legacy fixture over stdio) or a plain proxy written the usual way (bench/plain-proxy.ts: \`createMcpHandler\` building an SDK v2 low-level \`Server\` per request, whose handlers forward to one SDK v2 \`Client\` of the same fixture on the same thread, on \`node:http\` through \`toNodeHandler\`). Each runs in a child process of its own (bench/gateway-host.ts); both open at once, ${s.gatewayRounds} interleaved round(s) after ${s.gatewayWarmupCalls} warm-up calls per size; per round ${s.gatewayCalls["10b"]} \`echo\` calls (10 B) and ${s.gatewayCalls["100kb"]} \`huge {bytes: 102400}\` calls, ${s.throughputInFlight} in flight. Main-thread CPU: the child's main thread's schedstat (/proc/<pid>/task/<pid>/schedstat) over the window ÷ calls; process CPU: utime + stime of the whole child (its pool workers included; 10 ms ticks) ÷ calls; p50/p99: each call's latency as the downstream client sees it.`,
    `Scaling (${s.scalingRounds} round(s) for one session, one round for more): ${s.scalingSessions.join(", ")} sessions at once, each ${s.scalingCallsPerSession} sequential \`echo\` calls then close, no call started after ${s.scalingWindowMs / 1000} s (successful calls ÷ elapsed time; the "done" row says how many of the planned calls fit), on a \`scope: "session"\` server with maxWorkers ${SCALING_MAX_WORKERS} (pool column); the SDK column opens one Client (own server) per session, at most ${SCALING_MAX_WORKERS} at once. Includes every server start.`,
  ];
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const s = SETTINGS[opts.mode];
  const started = Date.now();
  const rec = new Recorder();
  const open = new Set<Closable>();
  const defs = [...FIGURES, ...memoryFigures(s)];
  const reference: Results["reference"] = {};
  let complete = false;

  const build = (): Results => {
    const figures: Record<string, Figure> = {};
    for (const def of defs) {
      const subjects = rec.summaries(def.key);
      if (Object.keys(subjects).length > 0) figures[def.key] = withRatios(def, subjects);
    }
    const info = machine();
    withFloors(figures, reference, info.cores);
    return {
      mode: opts.mode,
      machine: info,
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
  // A smoke run checks that each phase works, not its figures: its memory probes (child processes that
  // mostly sleep) run beside the other phases, which takes their ~15 s off its time.
  const memory = opts.phases.has("memory") && opts.mode === "smoke" ? memoryPhase(opts, s, rec, reference) : undefined;
  // So does its gateway scenario (two child processes and a few hundred calls).
  const gateway = opts.phases.has("gateway") && opts.mode === "smoke" ? gatewayPhase(opts, s, rec, open) : undefined;
  if (opts.phases.has("steady")) await steadyPhase(opts, s, rec, open, reference);
  if (opts.phases.has("connect")) await connectPhase(opts, s, rec, open, reference);
  if (memory) await memory;
  else if (opts.phases.has("memory")) await memoryPhase(opts, s, rec, reference);
  if (opts.phases.has("scaling")) await scalingPhase(opts, s, rec, defs);
  if (gateway) await gateway;
  else if (opts.phases.has("gateway")) await gatewayPhase(opts, s, rec, open);
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


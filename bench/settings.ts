/**
 * The benchmark's modes (full, quick, smoke) and command line.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { ResultSize } from "./scenarios.js";
import { baselineOf, SUBJECTS, type SubjectName } from "./subjects.js";

// ---------------------------------------------------------------------------- settings

export interface Settings {
  rounds: number;
  warmupCalls: number;
  latencyCalls: number;
  throughputCalls: number;
  throughputInFlight: number;
  serverBoundCalls: number;
  /** Calls of the fixture's `burn` tool (1 ms of server CPU each) in the replicas figure. */
  burnCalls: number;
  busyCalls: Record<ResultSize, number>;
  busyInFlight: number;
  eldCalls: number;
  eldInFlight: number;
  connectRounds: number;
  memoryRounds: number;
  /** Connections per memory probe for sdk and langchain (pools use their own replica count). */
  memoryClients: number;
  /** How long the memory probes idle before the figure that counts (see memory-probe.ts). */
  memoryIdleMs: number;
  scalingSessions: number[];
  scalingCallsPerSession: number;
  scalingRounds: number;
  /** No scaling call starts after this long (the pool or the SDK may not get through them all). */
  scalingWindowMs: number;
  /** The gateway scenario (bench/gateway.ts): interleaved rounds, and calls per window at each result size, with 64 in flight. */
  gatewayRounds: number;
  gatewayCalls: { "10b": number; "100kb": number };
  gatewayWarmupCalls: number;
  scenarioCapMs: number;
  watchdogMs: number;
}

/**
 * How long a memory probe waits before its baseline: longer than V8's memory-reducer start delay (8 s),
 * so that the host's own start-up garbage is gone before it is measured (see memory-probe.ts).
 */
export const MEMORY_BASELINE_SETTLE_MS = 10_000;

export const SETTINGS: Record<"full" | "quick" | "smoke", Settings> = {
  full: {
    rounds: 5, warmupCalls: 200, latencyCalls: 500, throughputCalls: 3000, throughputInFlight: 64, serverBoundCalls: 400, burnCalls: 1200,
    busyCalls: { "10b": 1000, "10kb": 1000, "100kb": 300 }, busyInFlight: 16, eldCalls: 400, eldInFlight: 16,
    connectRounds: 5, memoryRounds: 3, memoryClients: 4, memoryIdleMs: 30_000,
    scalingSessions: [1, 10, 100], scalingCallsPerSession: 10, scalingRounds: 3, scalingWindowMs: 40_000,
    gatewayRounds: 5, gatewayCalls: { "10b": 1500, "100kb": 300 }, gatewayWarmupCalls: 300,
    scenarioCapMs: 60_000, watchdogMs: 15 * 60_000,
  },
  quick: {
    rounds: 3, warmupCalls: 60, latencyCalls: 150, throughputCalls: 600, throughputInFlight: 64, serverBoundCalls: 100, burnCalls: 300,
    busyCalls: { "10b": 200, "10kb": 200, "100kb": 60 }, busyInFlight: 16, eldCalls: 100, eldInFlight: 16,
    connectRounds: 1, memoryRounds: 1, memoryClients: 1, memoryIdleMs: 20_000,
    scalingSessions: [1, 8], scalingCallsPerSession: 5, scalingRounds: 1, scalingWindowMs: 5_000,
    gatewayRounds: 3, gatewayCalls: { "10b": 300, "100kb": 60 }, gatewayWarmupCalls: 100,
    scenarioCapMs: 30_000, watchdogMs: 360_000,
  },
  smoke: {
    rounds: 1, warmupCalls: 10, latencyCalls: 20, throughputCalls: 100, throughputInFlight: 64, serverBoundCalls: 20, burnCalls: 40,
    busyCalls: { "10b": 20, "10kb": 20, "100kb": 10 }, busyInFlight: 16, eldCalls: 20, eldInFlight: 16,
    connectRounds: 1, memoryRounds: 1, memoryClients: 1, memoryIdleMs: 2_000,
    scalingSessions: [1], scalingCallsPerSession: 2, scalingRounds: 1, scalingWindowMs: 10_000,
    gatewayRounds: 1, gatewayCalls: { "10b": 64, "100kb": 64 }, gatewayWarmupCalls: 16,
    scenarioCapMs: 15_000, watchdogMs: 150_000,
  },
};

export const PHASES = ["steady", "connect", "memory", "scaling", "gateway"] as const;
export type Phase = (typeof PHASES)[number];

export interface Options {
  mode: keyof typeof SETTINGS;
  out: string;
  phases: Set<Phase>;
  subjects: SubjectName[];
}

/**
 * Every subject, except that a smoke run leaves out pool-2@2026: it checks that each kind of subject
 * runs (pool-2 already covers a 2-replica pool), within the bench-smoke test's bound.
 */
function defaultSubjects(mode: Options["mode"]): SubjectName[] {
  return mode === "smoke" ? SUBJECTS.filter((n) => n !== "pool-2@2026") : [...SUBJECTS];
}

export function parseArgs(argv: string[]): Options {
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
  const subjects = (value("--subjects")?.split(",") ?? defaultSubjects(mode)) as SubjectName[];
  for (const s of subjects) if (!(SUBJECTS as readonly string[]).includes(s)) throw new Error(`unknown subject ${s} (expected ${SUBJECTS.join(", ")})`);
  // Every ratio needs the plain client of its era: `--subjects pool-1@2026` brings in sdk-v2@2026 only.
  for (const baseline of new Set(subjects.map(baselineOf))) if (!subjects.includes(baseline)) subjects.unshift(baseline);
  return { mode, out, phases: new Set(only as Phase[]), subjects };
}


/**
 * Child process of the memory figure: `node --expose-gc dist/bench/memory-probe.js <subject> <n> [idleMs]`.
 * Opens `n` idle connections of one subject in a fresh host and prints one JSON line with the host's
 * RSS before and after, and each server process's RSS (VmRSS from /proc/<pid>/status).
 *
 * subject: any of the benchmark's (subjects.ts). A plain client (`sdk`, `langchain`, `sdk-v2@2026`) is
 * opened `n` times; a pool (`pool-N`, `pool-N@2026`) once, and `n` must be its replica count N.
 * `bare-worker`: `n` empty worker threads with the pool's resourceLimits, the floor of a connection's RSS.
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { MEMORY_BASELINE_SETTLE_MS } from "./settings.js";
import { median } from "./stats.js";
import { openBareWorkers } from "./floors.js";
import { isPool, openSubject, replicasOf, SUBJECTS, type Subject, type SubjectName } from "./subjects.js";

export interface MemoryProbeResult {
  kind: SubjectName | "bare-worker";
  n: number;
  idleMs: number;
  hostBeforeKb: number;
  /** 1 s after each connection's first call. */
  hostEarlyKb: number;
  serverRssEarlyKb: number[];
  /** After `idleMs` of idling. */
  hostAfterKb: number;
  serverRssKb: number[];
}

/** VmRSS of a process in kB (NaN when it cannot be read). */
export function vmRssKb(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

const exposedGc = (globalThis as { gc?: () => void }).gc;
/**
 * A full collection of the host's heap. Plain `gc()`: on Node 20 (V8 11.3) `gc()` with an options object
 * (`{ type: "major", execution: "sync", flavor: "last-resort" }`, as this was) collects nothing at all (a
 * main thread holding 14 MB of garbage: 17.1 MB used before and after, against 2.9 MB after `gc()`).
 */
const gc = (): void => exposedGc?.();

/** How long the connections idle before the figure that counts (argv[4], default 30 s). */
const IDLE_MS = Number(process.argv[4] ?? "30000");

async function hostRssKb(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    gc();
    samples.push(process.memoryUsage().rss / 1024);
    await sleep(100);
  }
  return median(samples);
}

/**
 * `bare-worker <n>`: the floor, `n` empty workers with the pool's resourceLimits (floors.ts), each heard
 * from once, measured the same way; serverRssKb is empty.
 */
async function bareWorkers(n: number): Promise<void> {
  await sleep(Math.min(IDLE_MS, MEMORY_BASELINE_SETTLE_MS));
  const hostBeforeKb = await hostRssKb();
  const workers = await openBareWorkers(n);
  try {
    const idleSince = performance.now();
    await sleep(1_000);
    const hostEarlyKb = await hostRssKb();
    await sleep(Math.max(0, IDLE_MS - (performance.now() - idleSince)));
    const hostAfterKb = await hostRssKb();
    const result: MemoryProbeResult = { kind: "bare-worker", n, idleMs: IDLE_MS, hostBeforeKb, hostEarlyKb, serverRssEarlyKb: [], hostAfterKb, serverRssKb: [] };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    await workers.close();
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === "bare-worker") return bareWorkers(Number(process.argv[3] ?? "1"));
  const kind = (process.argv[2] ?? "") as SubjectName;
  const n = Number(process.argv[3] ?? "1");
  if (!SUBJECTS.includes(kind) || !Number.isInteger(n) || n < 1 || (isPool(kind) && n !== replicasOf(kind)) || !(IDLE_MS >= 1_000)) {
    throw new Error(`usage: memory-probe.js <${SUBJECTS.join("|")}> <n, a pool's replica count for a pool> [idleMs ≥ 1000]`);
  }
  const pool = isPool(kind);
  // The baseline gets the same treatment as the figure: loading the module graph grew the main
  // thread's heap (30 MB here), and even a last-resort GC leaves it that size until the memory
  // reducer shrinks it (to 13-15 MB, 6-8 s later). Measured before that, an SDK client "costs" -10 MB.
  await sleep(Math.min(IDLE_MS, MEMORY_BASELINE_SETTLE_MS));
  const hostBeforeKb = await hostRssKb();
  const subjects: Subject[] = [];
  try {
    for (let i = 0; i < (pool ? 1 : n); i++) subjects.push(await openSubject(kind));
    // One call per connection (n at once on the pool: the balancer spreads them), then idle.
    await Promise.all(subjects.flatMap((s) => Array.from({ length: pool ? n : 1 }, () => s.call("echo", { message: "hi" }))));
    const idleSince = performance.now();
    const pids = (await Promise.all(subjects.map((s) => s.serverPids()))).flat();
    await sleep(1_000);
    const hostEarlyKb = await hostRssKb();
    const serverRssEarlyKb = pids.map(vmRssKb);
    await sleep(Math.max(0, IDLE_MS - (performance.now() - idleSince)));
    const hostAfterKb = await hostRssKb();
    const result: MemoryProbeResult = { kind, n, idleMs: IDLE_MS, hostBeforeKb, hostEarlyKb, serverRssEarlyKb, hostAfterKb, serverRssKb: pids.map(vmRssKb) };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    await Promise.all(subjects.map((s) => s.close().catch(() => {})));
  }
}

// The probe must end on its own even if a close hangs.
const watchdog = setTimeout(() => {
  process.stderr.write("memory-probe: watchdog fired\n");
  process.exit(3);
}, 60_000 + MEMORY_BASELINE_SETTLE_MS + (IDLE_MS || 0));
watchdog.unref();

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`memory-probe: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

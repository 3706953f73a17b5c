/**
 * Child process of the memory figure: `node --expose-gc dist/bench/memory-probe.js <kind> <n>`.
 * Opens `n` idle connections of one kind in a fresh host and prints one JSON line with the host's
 * RSS before and after, and each server process's RSS (VmRSS from /proc/<pid>/status).
 *
 * kind: `sdk` (n plain SDK clients), `langchain` (n MultiServerMCPClients), `pool` (one pool, n replicas).
 */
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { median } from "./stats.js";
import { openLangchain, openPool, openSdk, type Subject } from "./subjects.js";

export interface MemoryProbeResult {
  kind: string;
  n: number;
  hostBeforeKb: number;
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

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function hostRssKb(): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    gc();
    samples.push(process.memoryUsage().rss / 1024);
    await sleep(100);
  }
  return median(samples);
}

async function main(): Promise<void> {
  const kind = process.argv[2] ?? "";
  const n = Number(process.argv[3] ?? "1");
  if (!["sdk", "langchain", "pool"].includes(kind) || !Number.isInteger(n) || n < 1) {
    throw new Error(`usage: memory-probe.js sdk|langchain|pool <n>`);
  }
  // Let the module graph settle before the baseline: only connections should count.
  await sleep(200);
  const hostBeforeKb = await hostRssKb();
  const subjects: Subject[] = [];
  try {
    if (kind === "pool") subjects.push(await openPool(n === 1 ? "pool-1" : n === 2 ? "pool-2" : "pool-4", n));
    else for (let i = 0; i < n; i++) subjects.push(kind === "sdk" ? await openSdk() : await openLangchain());
    // One call per connection (n at once on the pool: the balancer spreads them), then idle.
    await Promise.all(subjects.flatMap((s) => Array.from({ length: kind === "pool" ? n : 1 }, () => s.call("echo", { message: "hi" }))));
    await sleep(1_000);
    const hostAfterKb = await hostRssKb();
    const pids = (await Promise.all(subjects.map((s) => s.serverPids()))).flat();
    const result: MemoryProbeResult = { kind, n, hostBeforeKb, hostAfterKb, serverRssKb: pids.map(vmRssKb) };
    process.stdout.write(JSON.stringify(result) + "\n");
  } finally {
    await Promise.all(subjects.map((s) => s.close().catch(() => {})));
  }
}

// The probe must end on its own even if a close hangs.
const watchdog = setTimeout(() => {
  process.stderr.write("memory-probe: watchdog fired\n");
  process.exit(3);
}, 60_000);
watchdog.unref();

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`memory-probe: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);

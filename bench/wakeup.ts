/**
 * Which wake-up between the main thread and a worker is faster here: a `MessagePort` message (what the pool
 * uses) or `Atomics.notify` on a `SharedArrayBuffer` that the other side awaits with `Atomics.waitAsync`
 * (issue 19 asks to measure it). Both sides stay on their event loops, as the pool's must (a blocking
 * `Atomics.wait` would stop the worker's transport). One round trip: main wakes the worker, the worker wakes main.
 *
 *   node dist/bench/wakeup.js [roundTrips=2000] [runs=5]
 *
 * Prints, per run and mechanism, the round trip's p50 and p99 in µs and the main thread's CPU per round trip.
 * Not part of `npm run bench`: the answer decides a design question once (docs/performance.md, "Wake-ups").
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { MessageChannel, Worker } from "node:worker_threads";

const WORKER = `const { workerData } = require("node:worker_threads");
const { port, shared } = workerData;
port.on("message", (m) => port.postMessage(m));
const flag = new Int32Array(shared);
// flag[0]: main's sequence number, flag[1]: the worker's answer to it.
let seen = 0;
const wait = () => {
  const r = Atomics.waitAsync(flag, 0, seen);
  const go = () => {
    seen = Atomics.load(flag, 0);
    if (seen < 0) return;
    Atomics.store(flag, 1, seen);
    Atomics.notify(flag, 1);
    wait();
  };
  if (r.async) r.value.then(go); else go();
};
wait();
port.postMessage("up");`;

/** `Atomics.waitAsync` (Node 16+; not in this project's TypeScript lib). */
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number): { async: boolean; value: Promise<string> | string } }).waitAsync;

function mainCpuNs(): number {
  try {
    return Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main(): Promise<void> {
  const roundTrips = Number(process.argv[2] ?? 2000);
  const runs = Number(process.argv[3] ?? 5);
  const { port1, port2 } = new MessageChannel();
  const shared = new SharedArrayBuffer(8);
  const flag = new Int32Array(shared);
  const worker = new Worker(WORKER, { eval: true, workerData: { port: port2, shared }, transferList: [port2] });
  const watchdog = setTimeout(() => {
    console.error("wakeup: still running after 120 s, giving up");
    process.exit(1);
  }, 120_000);
  await new Promise((resolve) => port1.once("message", resolve));

  const viaPort = (): Promise<void> =>
    new Promise((resolve) => {
      port1.once("message", () => resolve());
      port1.postMessage(1);
    });
  let seq = 0;
  const viaAtomics = async (): Promise<void> => {
    seq++;
    Atomics.store(flag, 0, seq);
    Atomics.notify(flag, 0);
    while (Atomics.load(flag, 1) !== seq) {
      const r = waitAsync(flag, 1, seq - 1);
      if (r.async) await r.value;
    }
  };
  const measure = async (name: string, once: () => Promise<void>): Promise<void> => {
    for (let i = 0; i < 200; i++) await once(); // warm-up
    const times: number[] = [];
    const cpu0 = mainCpuNs();
    for (let i = 0; i < roundTrips; i++) {
      const t0 = performance.now();
      await once();
      times.push((performance.now() - t0) * 1000);
    }
    const cpu = (mainCpuNs() - cpu0) / 1000 / roundTrips;
    times.sort((a, b) => a - b);
    console.log(`${name.padEnd(8)} p50 ${percentile(times, 50).toFixed(1).padStart(6)} µs  p99 ${percentile(times, 99).toFixed(1).padStart(7)} µs  main-thread CPU ${cpu.toFixed(1).padStart(5)} µs per round trip`);
  };
  for (let run = 0; run < runs; run++) {
    await measure("port", viaPort);
    await measure("atomics", viaAtomics);
  }
  Atomics.store(flag, 0, -1);
  Atomics.notify(flag, 0);
  clearTimeout(watchdog);
  await worker.terminate();
}

await main();

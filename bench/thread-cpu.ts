/**
 * Where a call's CPU goes, thread by thread: the host's main thread, the pool's worker threads, the
 * host's other threads (V8's garbage-collection helpers, mostly), and the server's main and helper
 * threads. Reads every thread's `/proc/<pid>/task/<tid>/schedstat` (Linux) around a window of calls.
 *
 *   node dist/bench/thread-cpu.js [subject=pool-1] [bytes=0] [calls=12000] [inFlight=64] [runs=3]
 *
 * `subject` is one of the benchmark's (sdk, langchain, pool-1, pool-2, pool-4, sdk-v2@2026, pool-1@2026, pool-2@2026); `bytes` 0 calls the
 * fixture's echo, otherwise its huge tool with a result of that many characters. Prints one line per
 * run: calls per second, then µs of CPU per call in each kind of thread. Worker threads are told from
 * the host's other threads as the pool's busiest N (N = replicas): nothing else in the host comes close.
 * This is the measurement behind docs/performance.md, "Where the time goes". Not part of `npm run bench`.
 * `BENCH_OTEL=1` registers the OpenTelemetry SDK first (bench/otel.ts): the cost of telemetry on.
 * `BENCH_PAD=1` sends arguments as large as the result too (`huge {bytes, pad}`, as the bench's busy figures do).
 */
import { readdirSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { busyArgs } from "./scenarios.js";
import { openSubject, replicasOf, SUBJECTS, type SubjectName } from "./subjects.js";

const WATCHDOG_MS = 5 * 60_000;

/** CPU time of every thread of `pid` so far, in ns, by thread id. */
function threadCpu(pid: number): Map<number, number> {
  const cpu = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      cpu.set(Number(tid), Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]));
    } catch {
      // the thread ended meanwhile
    }
  }
  return cpu;
}

/** µs per call of each thread that ran during the window, busiest first. */
function perCall(before: Map<number, number>, after: Map<number, number>, calls: number): Array<[number, number]> {
  const rows: Array<[number, number]> = [];
  for (const [tid, ns] of after) rows.push([tid, (ns - (before.get(tid) ?? ns)) / 1e3 / calls]);
  return rows.filter(([, us]) => us > 0).sort((a, b) => b[1] - a[1]);
}

const sum = (rows: Array<[number, number]>): number => rows.reduce((total, [, us]) => total + us, 0);

async function run(subjectName: SubjectName, bytes: number, calls: number, inFlight: number): Promise<string> {
  const subject = await openSubject(subjectName);
  try {
    const args = bytes === 0 ? { message: "hi" } : process.env.BENCH_PAD === "1" ? busyArgs(bytes) : { bytes };
    const call = () => subject.call(bytes > 0 ? "huge" : "echo", args);
    const burst = async (n: number): Promise<void> => {
      let started = 0;
      const lane = async () => {
        while (started++ < n) await call();
      };
      await Promise.all(Array.from({ length: inFlight }, lane));
    };
    await burst(Math.min(calls, 2_000)); // warm-up: JIT, connections, buffers
    const servers = await subject.serverPids();
    const hostBefore = threadCpu(process.pid);
    const serversBefore = servers.map(threadCpu);
    const t0 = performance.now();
    await burst(calls);
    const seconds = (performance.now() - t0) / 1000;
    const host = perCall(hostBefore, threadCpu(process.pid), calls);
    const main = host.find(([tid]) => tid === process.pid)?.[1] ?? 0;
    const others = host.filter(([tid]) => tid !== process.pid);
    const workerCount = subjectName.startsWith("pool") ? replicasOf(subjectName) : 0;
    const workers = sum(others.slice(0, workerCount));
    const helpers = sum(others.slice(workerCount));
    let serverMain = 0;
    let serverHelpers = 0;
    servers.forEach((pid, i) => {
      const rows = perCall(serversBefore[i]!, threadCpu(pid), calls);
      serverMain += rows.find(([tid]) => tid === pid)?.[1] ?? 0;
      serverHelpers += sum(rows.filter(([tid]) => tid !== pid));
    });
    const f = (us: number) => us.toFixed(1).padStart(6);
    return (
      `${subjectName.padEnd(11)} ${String(bytes).padStart(6)} B ×${inFlight} ${String(Math.round(calls / seconds)).padStart(7)} calls/s │ ` +
      `host: main${f(main)}  workers${f(workers)}  other threads${f(helpers)}  all${f(main + workers + helpers)} │ ` +
      `server: main${f(serverMain)}  other threads${f(serverHelpers)}  (µs of CPU per call)`
    );
  } finally {
    await subject.close();
  }
}

const [subjectArg = "pool-1", bytesArg = "0", callsArg = "12000", inFlightArg = "64", runsArg = "3"] = process.argv.slice(2);
if (!(SUBJECTS as readonly string[]).includes(subjectArg)) {
  console.error(`unknown subject ${subjectArg} (expected ${SUBJECTS.join(", ")})`);
  process.exit(2);
}
const [bytes, calls, inFlight, runs] = [bytesArg, callsArg, inFlightArg, runsArg].map(Number) as [number, number, number, number];
if (![bytes, calls, inFlight, runs].every((n) => Number.isInteger(n) && n >= 0) || calls === 0 || inFlight === 0) {
  console.error("bytes, calls, inFlight and runs must be non-negative integers (calls and inFlight above 0)");
  process.exit(2);
}
const watchdog = setTimeout(() => {
  console.error(`thread-cpu: no result after ${WATCHDOG_MS / 1000} s, giving up`);
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();
const shutdownOtel = process.env.BENCH_OTEL === "1" ? (await import("./otel.js")).registerOtel() : undefined;
for (let i = 0; i < runs; i++) console.log(await run(subjectArg as SubjectName, bytes, calls, inFlight));
await shutdownOtel?.();

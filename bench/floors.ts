/**
 * The floors: what the work of a pooled call costs with no pool code in the way. A bare worker thread
 * (started with the pool's own `resourceLimits`) answers "calls" over a MessagePort, and the
 * main thread awaits each answer through a promise, as a pool's caller does. Each pool figure in the
 * benchmark is printed beside the floor measured here in the same run (report.ts, `floorsOf`).
 *
 * - `bareBusy`: main-thread busy time and CPU per call when the arguments (`bytes` characters) go to the
 *   worker and a result of `bytes` characters (`{ content: [{ type: "text", text }] }`, a fresh string each
 *   time) comes back to an awaiting promise, `inFlight` outstanding;
 * - `bareWorkerStart`: `new Worker` until the worker's first message arrives;
 * - `openBareWorkers`: empty, idle workers for the memory probe (RSS of a worker beyond the host).
 */
import { readFileSync } from "node:fs";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { workerResourceLimits } from "../src/supervisor.js";

/** The pool's default `limits.workerHeapMb` (src/config.ts). */
const DEFAULT_WORKER_HEAP_MB = 256;
export const BARE_RESOURCE_LIMITS = workerResourceLimits(DEFAULT_WORKER_HEAP_MB);

/**
 * The workers' code, evaluated as a script: a module file would load this one and its imports (the
 * pool's supervisor, piscina) into every bare worker, and the floor would carry them.
 * "answer": answers each request on the port it is given with a fresh result as long as the arguments.
 * "idle": says it is up, then stays idle (a port with a listener keeps the thread alive).
 */
const WORKER_CODE = {
  answer: `const { workerData } = require("node:worker_threads");
    const port = workerData.port;
    let seq = 0;
    port.on("message", (m) => {
      const bytes = m.args.text.length;
      const text = bytes > 0 ? "x".repeat(bytes - 1) + String.fromCharCode(97 + (seq++ % 26)) : "";
      port.postMessage([{ callId: m.callId, value: { content: [{ type: "text", text }] } }]);
    });`,
  idle: `const { parentPort } = require("node:worker_threads");
    parentPort.on("message", () => {});
    parentPort.postMessage("up");`,
};

type WorkerRole = { role: "answer"; port: MessagePort } | { role: "idle" };

interface Request {
  callId: number;
  args: { text: string };
}
interface Answer {
  callId: number;
  value: { content: Array<{ type: "text"; text: string }> };
}

function startWorker(role: WorkerRole, transferList: MessagePort[] = []): Worker {
  return new Worker(WORKER_CODE[role.role], { eval: true, workerData: role, transferList, resourceLimits: BARE_RESOURCE_LIMITS });
}

/** Main thread's own CPU time so far, in ns (Linux schedstat of its task); NaN elsewhere. */
const SCHEDSTAT = `/proc/${process.pid}/task/${process.pid}/schedstat`;
function mainThreadCpuNs(): number {
  try {
    return Number(readFileSync(SCHEDSTAT, "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

export interface BareBusy {
  /** Event-loop busy time per call (utilisation × window ÷ calls), µs. */
  elu: number;
  /** Main-thread CPU per call, µs. */
  cpu: number;
  /** All of the host's threads (process.cpuUsage), µs per call. */
  host: number;
}

/** One window of `calls` bare calls of `bytes` each way, `inFlight` outstanding, after `warmup` calls. */
export async function bareBusy(bytes: number, calls: number, inFlight: number, warmup = Math.min(200, calls)): Promise<BareBusy> {
  const { port1, port2 } = new MessageChannel();
  const worker = startWorker({ role: "answer", port: port2 }, [port2]);
  const waiters = new Map<number, (text: string) => void>();
  let nextId = 0;
  port1.on("message", (answers: Answer[]) => {
    for (const a of answers) {
      const waiter = waiters.get(a.callId);
      waiters.delete(a.callId);
      waiter?.(a.value.content[0]!.text);
    }
  });
  const payload = "y".repeat(bytes);
  const call = (): Promise<string> =>
    new Promise((resolve) => {
      const callId = ++nextId;
      waiters.set(callId, resolve);
      port1.postMessage({ callId, args: { text: payload } } satisfies Request);
    });
  let chars = 0;
  const run = async (total: number): Promise<void> => {
    let started = 0;
    await Promise.all(
      Array.from({ length: Math.min(inFlight, total) }, async () => {
        while (started++ < total) {
          const text = await call(); // not `chars += await call()`: that reads `chars` before the await
          chars += text.length;
        }
      }),
    );
  };
  try {
    await run(warmup);
    const before = performance.eventLoopUtilization();
    const cpu0 = mainThreadCpuNs();
    const host0 = process.cpuUsage();
    await run(calls);
    const host = process.cpuUsage(host0);
    const cpu1 = mainThreadCpuNs();
    const elu = performance.eventLoopUtilization(before);
    if (chars !== (warmup + calls) * bytes) throw new Error(`bare worker: ${chars} characters received, expected ${(warmup + calls) * bytes}`);
    return { elu: (elu.active * 1000) / calls, cpu: (cpu1 - cpu0) / 1000 / calls, host: (host.user + host.system) / calls };
  } finally {
    port1.close();
    await worker.terminate();
  }
}

/** `new Worker` (this module, the pool's resourceLimits) until its first message arrives, in ms. */
export async function bareWorkerStart(): Promise<number> {
  const t0 = performance.now();
  const worker = startWorker({ role: "idle" });
  try {
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`bare worker exited with ${code} before it spoke`)));
    });
    return performance.now() - t0;
  } finally {
    await worker.terminate();
  }
}

/** `n` idle workers, each heard from once; `close` ends them. */
export async function openBareWorkers(n: number): Promise<{ close(): Promise<void> }> {
  const workers: Worker[] = [];
  for (let i = 0; i < n; i++) {
    const worker = startWorker({ role: "idle" });
    workers.push(worker);
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
    });
  }
  return { close: async () => void (await Promise.all(workers.map((w) => w.terminate()))) };
}

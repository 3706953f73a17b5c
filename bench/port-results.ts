/**
 * What receiving large results over a MessagePort costs the main thread, with no pool code in the way:
 * a bare worker answers "calls" with one result each (`{ content: [{ type: "text", text }] }`, a fresh
 * string per result), 16 in flight, and the main thread either drops each result in a callback or
 * hands it to an awaiting caller through a promise, as any promise-returning client does.
 *
 *   node dist/bench/port-results.js [bytes=102400] [calls=6000]
 *
 * Prints the main thread's own CPU per call (Linux schedstat) for both. The difference is garbage
 * collection: a promise pending across two scavenges is promoted, and a result written into it stays
 * alive until the next full collection (see docs/performance.md, "Where the time goes"). Not part of `npm run bench`.
 */
import { MessageChannel, Worker, isMainThread, workerData, type MessagePort } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

const IN_FLIGHT = 16;
const WATCHDOG_MS = 60_000;

interface Answer {
  results: Array<{ callId: number; value: { content: Array<{ type: "text"; text: string }> } }>;
}

function mainThreadCpuNs(): number {
  return Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, "utf8").split(" ")[0]);
}

async function measure(mode: "callback" | "await", bytes: number, calls: number): Promise<void> {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL(import.meta.url), { workerData: { bytes, port: port2 }, transferList: [port2] });
  const waiters = new Map<number, (text: string) => void>();
  let nextId = 0;
  let chars = 0;
  port1.on("message", (m: Answer) => {
    for (const r of m.results) {
      const waiter = waiters.get(r.callId);
      waiters.delete(r.callId);
      waiter?.(r.value.content[0]!.text);
    }
  });
  const send = (onText: (text: string) => void): void => {
    const callId = ++nextId;
    waiters.set(callId, onText);
    port1.postMessage({ callId });
  };
  const cpu0 = mainThreadCpuNs();
  const t0 = performance.now();
  if (mode === "callback") {
    await new Promise<void>((done) => {
      let sent = 0;
      let got = 0;
      const onText = (text: string): void => {
        chars += text.length;
        if (++got === calls) done();
        else if (sent < calls) (sent++, send(onText));
      };
      for (; sent < IN_FLIGHT; sent++) send(onText);
    });
  } else {
    const call = (): Promise<string> => new Promise((resolve) => send(resolve));
    let started = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (started++ < calls) {
          const text = await call();
          chars += text.length;
        }
      }),
    );
  }
  const ms = performance.now() - t0;
  const cpuUs = (mainThreadCpuNs() - cpu0) / 1000 / calls;
  console.log(`${mode.padEnd(8)} ${bytes} B results: main-thread CPU ${cpuUs.toFixed(1)} µs/call, ${Math.round((calls / ms) * 1000)}/s (${chars} chars received)`);
  port1.close();
  await worker.terminate();
}

function answer(port: MessagePort, bytes: number): void {
  let seq = 0;
  port.on("message", ({ callId }: { callId: number }) => {
    const text = "x".repeat(bytes - 1) + String.fromCharCode(97 + (seq++ % 26));
    port.postMessage({ results: [{ callId, value: { content: [{ type: "text", text }] } }] } satisfies Answer);
  });
}

if (isMainThread) {
  const bytes = Number(process.argv[2] ?? 102_400);
  const calls = Number(process.argv[3] ?? 6_000);
  const watchdog = setTimeout(() => {
    console.error("port-results: watchdog fired");
    process.exit(1);
  }, WATCHDOG_MS);
  await measure("callback", bytes, calls);
  await measure("await", bytes, calls);
  clearTimeout(watchdog);
} else {
  const { bytes, port } = workerData as { bytes: number; port: MessagePort };
  answer(port, bytes);
}

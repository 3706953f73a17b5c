/**
 * What an idle connection's worker holds on its V8 heap, next to a bare worker's: a heap snapshot of the
 * worker (`Worker.getHeapSnapshot()`, which collects garbage first) one second after its first call,
 * summed by kind of object.
 *
 *   node dist/bench/worker-heap.js [legacy | modern | bare] [rows=25]
 *
 * `legacy` / `modern`: a pool with one connection to the fixture of that era (bench/subjects.ts), one echo
 * call; `bare`: an empty worker with the pool's resourceLimits (bench/floors.ts). Prints the live total
 * and the largest kinds, and every single object over 20 KB. Not part of `npm run bench`; the measurement
 * behind docs/performance.md, "Idle memory".
 */
import { syncBuiltinESMExports } from "node:module";
import workerThreads from "node:worker_threads";

const WATCHDOG_MS = 60_000;

// The pool's workers are piscina's: record every Worker constructed, so that the last one can be asked for
// its snapshot. Patched before the pool is loaded, and synced into the ESM named exports piscina imports.
const started: workerThreads.Worker[] = [];
const Original = workerThreads.Worker;
workerThreads.Worker = class extends Original {
  constructor(...args: ConstructorParameters<typeof Original>) {
    super(...args);
    started.push(this);
  }
} as typeof Original;
syncBuiltinESMExports();

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

async function summarize(worker: workerThreads.Worker, rows: number): Promise<void> {
  let text = "";
  for await (const chunk of await worker.getHeapSnapshot()) text += String(chunk);
  const s = JSON.parse(text) as Snapshot;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [it, iname, isize] = [fields.indexOf("type"), fields.indexOf("name"), fields.indexOf("self_size")];
  const byKind = new Map<string, number>();
  const big: string[] = [];
  let total = 0;
  for (let i = 0; i < s.nodes.length; i += fields.length) {
    const type = types[s.nodes[i + it]!]!;
    const name = s.strings[s.nodes[i + iname]!]!;
    const size = s.nodes[i + isize]!;
    const kind = type === "object" || type === "closure" || type === "code" ? `${type}: ${name.slice(0, 40)}` : type;
    total += size;
    byKind.set(kind, (byKind.get(kind) ?? 0) + size);
    if (size > 20_000) big.push(`${(size / 1024).toFixed(0).padStart(7)} KB  ${type} ${JSON.stringify(name.slice(0, 80))}`);
  }
  console.log(`live heap ${(total / 1024 / 1024).toFixed(2)} MB`);
  for (const [kind, size] of [...byKind].sort((a, b) => b[1] - a[1]).slice(0, rows)) console.log(`${(size / 1024).toFixed(0).padStart(7)} KB  ${kind}`);
  console.log("objects over 20 KB:");
  for (const line of big) console.log(line);
}

async function main(): Promise<void> {
  const what = process.argv[2] ?? "modern";
  const rows = Number(process.argv[3] ?? 25);
  if (what === "bare") {
    const { BARE_RESOURCE_LIMITS } = await import("./floors.js");
    const worker = new Original(`const { parentPort } = require("node:worker_threads"); parentPort.on("message", () => {}); parentPort.postMessage("up");`, {
      eval: true,
      resourceLimits: BARE_RESOURCE_LIMITS,
    });
    await new Promise((resolve) => worker.once("message", resolve));
    await summarize(worker, rows);
    await worker.terminate();
    return;
  }
  if (what !== "legacy" && what !== "modern") throw new Error("usage: worker-heap.js [legacy | modern | bare] [rows]");
  const { createPool } = await import("../src/index.js");
  const { poolConfig } = await import("./subjects.js");
  const pool = await createPool(poolConfig(1, what));
  try {
    await pool.callTool("fixture__echo", { message: "hi" });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const worker = started.at(-1);
    if (!worker) throw new Error("no worker thread was started");
    await summarize(worker, rows);
  } finally {
    await pool.close();
  }
}

const watchdog = setTimeout(() => {
  console.error("worker-heap: watchdog fired");
  process.exit(1);
}, WATCHDOG_MS);
watchdog.unref();
main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : String(error));
  process.exitCode = 1;
});

/**
 * `limits.workerNice`: worker threads and the stdio servers they start run below the host's priority,
 * so that tool traffic yields the CPU to the host's main thread. Read from /proc: these run on Linux.
 */
import test from "ava";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createPool, McpPoolError } from "../src/index.js";
import { stdioServer } from "./helpers/fixtures.js";

/** Nice value of a process or thread (field 19 of its stat). */
function niceOf(path: string): number {
  const stat = readFileSync(path, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
}

/** Nice values of this process's threads other than the main thread. */
function threadNices(): number[] {
  return readdirSync(`/proc/${process.pid}/task`)
    .filter((tid) => Number(tid) !== process.pid)
    .map((tid) => niceOf(`/proc/${process.pid}/task/${tid}/stat`));
}

test("with workerNice the server process, its scheduling group and the worker thread run at that niceness; the main thread does not", async (t) => {
  const pool = await createPool({ servers: { a: { ...stdioServer(), keepalive: { intervalMs: 0 } } }, limits: { workerNice: 7 } });
  t.teardown(() => pool.close());
  const pid = pool.stats().servers.a!.connections[0]!.pid!;
  t.is(niceOf(`/proc/${pid}/stat`), 7);
  if (existsSync(`/proc/${pid}/autogroup`)) t.regex(readFileSync(`/proc/${pid}/autogroup`, "utf8"), /nice 7\b/);
  t.true(threadNices().includes(7), "a worker thread runs at nice 7");
  t.is(niceOf(`/proc/${process.pid}/stat`), 0);
  const result = await pool.callTool("a__echo", { message: "low" });
  t.deepEqual(result.content, [{ type: "text", text: "low" }]);
});

test("by default the server process keeps the host's priority", async (t) => {
  const pool = await createPool({ servers: { a: { ...stdioServer(), keepalive: { intervalMs: 0 } } } });
  t.teardown(() => pool.close());
  t.is(niceOf(`/proc/${pool.stats().servers.a!.connections[0]!.pid!}/stat`), 0);
});

test("workerNice outside 0..19 is refused with CONFIG_INVALID naming limits.workerNice", async (t) => {
  for (const workerNice of [-1, 20, 2.5]) {
    const error = await t.throwsAsync(createPool({ servers: { a: stdioServer() }, limits: { workerNice } }), { instanceOf: McpPoolError });
    t.is(error?.code, "CONFIG_INVALID");
    t.regex(error!.message, /limits\.workerNice/);
  }
});

/**
 * Closing right after a worker ran out of heap (issue 12, item 1): the host process must survive.
 * Each run is a separate host program (test/helpers/oom-close.ts), so that a crash of the host shows
 * as its exit signal instead of taking the test runner down with it.
 */
import test from "ava";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const OOM_CLOSE_SCRIPT = fileURLToPath(new URL("./helpers/oom-close.js", import.meta.url));
/** One run: start, a worker's out-of-memory, its replacement's start, close. Seconds, not tens. */
const RUN_DEADLINE_MS = 20_000;
const RUNS = 2;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runHost(mode: "pool" | "session"): Promise<Run> {
  const child = spawn(process.execPath, [OOM_CLOSE_SCRIPT, mode], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr = (stderr + chunk).slice(-4000)));
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_DEADLINE_MS);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

for (const mode of ["pool", "session"] as const) {
  test(`${mode === "pool" ? "pool.close()" : "session.close() then pool.close()"} right after a worker died of its heap lets the host exit 0, run after run`, async (t) => {
    for (let i = 0; i < RUNS; i++) {
      const run = await runHost(mode);
      t.deepEqual({ code: run.code, signal: run.signal, closed: run.stdout.includes("closed\n") }, { code: 0, signal: null, closed: true }, `run ${i + 1}; stderr: ${run.stderr}`);
    }
  });
}

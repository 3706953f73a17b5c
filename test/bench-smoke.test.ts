/**
 * The benchmark is not a test: this only checks that its smoke mode runs to the end by itself
 * and writes well-formed results, so that `npm run bench` does not rot unnoticed.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const RUN = fileURLToPath(new URL("../bench/run.js", import.meta.url));

test("the benchmark's smoke run exits by itself and writes JSON and Markdown with every figure", async (t) => {
  const out = mkdtempSync(join(tmpdir(), "bench-smoke-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));

  const code = await new Promise<number | string | null>((resolve) => {
    // The run has its own 50 s watchdog; this kill is the last resort.
    const child = execFile(process.execPath, [RUN, "--smoke", "--out", out], { timeout: 55_000, killSignal: "SIGKILL" }, (error) => {
      resolve(error ? ((error as { code?: number | string }).code ?? child.signalCode) : 0);
    });
  });
  t.is(code, 0);

  const results = JSON.parse(readFileSync(join(out, "latest.json"), "utf8"));
  t.true(results.complete);
  t.deepEqual(results.errors, []);
  for (const key of ["cpu", "cores", "node", "date"]) t.not(results.machine[key], undefined, `machine.${key}`);
  for (const key of [
    "latency_p50_us",
    "latency_p99_us",
    "throughput_64_cps",
    "busy_10b_us",
    "busy_10kb_us",
    "busy_100kb_us",
    "eld_p99_100kb_ms",
    "connect_ms",
    "recovery_ms",
    "rss_per_connection_mb",
    "rss_beyond_server_mb",
    "rss_beyond_server_early_mb",
    "scaling_1_cps",
  ]) {
    const figure = results.figures[key];
    t.truthy(figure, `figure ${key}`);
    t.true(Object.values(figure.subjects).some((s: any) => Number.isFinite(s.median)), `figure ${key} has a value`);
  }
  for (const subject of ["sdk", "langchain", "pool-1", "pool-2", "pool-4"]) {
    t.true(Number.isFinite(results.figures.latency_p50_us.subjects[subject]?.median), `latency of ${subject}`);
  }
  t.true(Number.isFinite(results.figures.busy_10b_us.ratios["pool-1"]));
  t.true(Number.isFinite(results.reference.cold_start_ms.median));
  t.true(results.targets.length > 0);
  t.true(results.targets.every((target: any) => typeof target.met === "boolean"));
  t.true(readFileSync(join(out, "latest.md"), "utf8").includes("÷ SDK"));
});

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

test("the benchmark's smoke run exits by itself and writes JSON and Markdown with every figure, on both fixtures", async (t) => {
  // Under the run's own watchdog and the kill below; AVA's default would cut a run on a busy machine short.
  // Alone on this machine the smoke run takes about 40 s of two cores; beside the rest of the suite and other
  // work on the machine it was seen past 80 s, so its bounds leave room for that.
  t.timeout(170_000);
  const out = mkdtempSync(join(tmpdir(), "bench-smoke-"));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));

  const code = await new Promise<number | string | null>((resolve) => {
    // The run has its own 150 s watchdog; this kill is the last resort.
    const child = execFile(process.execPath, [RUN, "--smoke", "--out", out], { timeout: 160_000, killSignal: "SIGKILL" }, (error) => {
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
  for (const subject of ["sdk", "langchain", "pool-1", "pool-2", "pool-4", "sdk-v2@2026", "pool-1@2026"]) {
    t.true(Number.isFinite(results.figures.latency_p50_us.subjects[subject]?.median), `latency of ${subject}`);
  }
  // The gateway scenario (issue 17): both sides measured, the gateway's ratios to the plain proxy, its targets.
  for (const key of ["gw_throughput_10b_cps", "gw_throughput_100kb_cps", "gw_cpu_10b_us", "gw_cpu_100kb_us", "gw_p50_10b_ms", "gw_p99_10b_ms", "gw_p50_100kb_ms", "gw_p99_100kb_ms"]) {
    for (const subject of ["plain-proxy", "gateway"]) t.true(Number.isFinite(results.figures[key]?.subjects[subject]?.median), `${key} of ${subject}`);
    t.true(Number.isFinite(results.figures[key].ratios.gateway), `${key}: gateway ÷ plain proxy`);
  }
  for (const id of ["gateway-cpu-100kb", "gateway-throughput-10b", "gateway-throughput-100kb"]) {
    t.true(results.targets.some((target: any) => target.id === id && target.measured), `target ${id}`);
  }
  for (const key of ["connect_ms", "rss_beyond_server_mb"]) {
    for (const subject of ["sdk-v2@2026", "pool-1@2026"]) t.true(Number.isFinite(results.figures[key].subjects[subject]?.median), `${key} of ${subject}`);
  }
  t.true(Number.isFinite(results.figures.recovery_ms.subjects["pool-1@2026"]?.median), "recovery of pool-1@2026");
  // Each pool is divided by the plain client of its own fixture.
  const busy = results.figures.busy_10b_us;
  t.true(Number.isFinite(busy.ratios["pool-1"]));
  const ratio = busy.subjects["pool-1@2026"].median / busy.subjects["sdk-v2@2026"].median;
  t.true(Math.abs(busy.ratios["pool-1@2026"] - ratio) <= 0.001 * Math.max(1, ratio), `pool-1@2026 ÷ sdk-v2@2026 = ${ratio}`);
  t.true(Number.isFinite(results.reference.cold_start_ms.median));
  t.true(Number.isFinite(results.reference.cold_start_modern_ms.median));
  t.true(results.targets.length > 0);
  t.true(results.targets.every((target: any) => typeof target.met === "boolean"));
  // Every floor is measured in the same run and stored beside its figure (issue 19).
  for (const key of ["port_rtt_us", "bare_busy_10b_us", "bare_busy_100kb_us", "bare_cpu_100kb_us", "bare_worker_start_ms", "bare_worker_rss_mb"]) {
    t.true(Number.isFinite(results.reference[key]?.median), `reference.${key}`);
  }
  for (const key of ["latency_p50_us", "host_cpu_10b_us", "host_cpu_100kb_us", "busy_10b_us", "busy_10kb_us", "busy_100kb_us", "connect_ms", "rss_beyond_server_mb", "throughput_burn_cps"]) {
    for (const subject of ["pool-1", "pool-1@2026"]) {
      if (key === "throughput_burn_cps" && subject === "pool-1@2026") continue;
      t.true(Number.isFinite(results.figures[key].floors[subject]), `floor of ${key} for ${subject}`);
      t.true(Number.isFinite(results.figures[key].floorRatios[subject]), `÷ floor of ${key} for ${subject}`);
    }
  }
  const burnFloor = Math.min(results.machine.cores, 2) * results.figures.throughput_burn_cps.subjects.sdk.median;
  t.true(Math.abs(results.figures.throughput_burn_cps.floors["pool-2"] - burnFloor) <= 0.001, `replicas floor of pool-2 = ${burnFloor}`);
  const md = readFileSync(join(out, "latest.md"), "utf8");
  t.true(md.includes("÷ floor"));
  t.true(md.includes("÷ SDK |"));
  t.true(md.includes("÷ SDK v2"));
  t.true(md.includes("÷ proxy"));
});

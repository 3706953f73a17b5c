/**
 * examples/prometheus.ts as a user runs it: the OpenTelemetry SDK's MeterProvider with the Prometheus exporter,
 * a pool over the bundled fixture server, `/metrics` scraped over HTTP on 127.0.0.1.
 */
import test from "ava";
import { startPrometheusExample } from "../examples/prometheus.js";

test("the Prometheus example serves the duration histogram and the pool's gauges on /metrics", async (t) => {
  const example = await startPrometheusExample(0);
  t.teardown(() => example.close());
  const response = await fetch(example.url, { signal: AbortSignal.timeout(10_000) });
  t.is(response.status, 200);
  const text = await response.text();
  t.regex(text, /^mcp_client_operation_duration_seconds_bucket\{[^}]*mcp_method_name="tools\/call"[^}]*gen_ai_tool_name="echo"[^}]*le="0\.01"[^}]*\} \d+/m);
  t.regex(text, /^mcp_client_operation_duration_seconds_count\{[^}]*error_type="tool_error"[^}]*\} 1$/m);
  for (const gauge of ["calls_in_flight", "calls_queued", "workers_active", "sessions_active"]) t.regex(text, new RegExp(`^mcp_worker_pool_${gauge}(\\{[^}]*\\})? \\d+`, "m"), gauge);
  t.regex(text, /^mcp_worker_pool_workers_active(\{[^}]*\})? 1$/m);
  t.regex(text, /^mcp_worker_pool_calls_rejected_total\{[^}]*error_type="TOOL_NOT_FOUND"[^}]*\} 1$/m);
});

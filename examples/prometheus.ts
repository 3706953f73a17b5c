/**
 * The pool's metrics in Prometheus: the application registers the OpenTelemetry SDK's MeterProvider with the
 * Prometheus exporter (the pool itself never registers anything), then creates a pool over the MCP server
 * bundled in this repo (test/fixtures/server.ts, over stdio), makes a few calls and serves `/metrics`:
 *
 *   npm run build && node dist/examples/prometheus.js [port=9464]
 *   curl http://127.0.0.1:9464/metrics
 *
 * Among what it serves: `mcp_client_operation_duration_seconds_bucket{mcp_method_name="tools/call",…}`, and the
 * pool's gauges `mcp_worker_pool_calls_in_flight`, `…_calls_queued`, `…_workers_active`, `…_sessions_active`.
 * In your own project, import from "mcp-worker-pool"; `@opentelemetry/api`, `@opentelemetry/sdk-metrics` and
 * `@opentelemetry/exporter-prometheus` are your application's dependencies.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath, pathToFileURL } from "node:url";
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { createPool } from "../src/index.js"; // "mcp-worker-pool"

const SERVER = fileURLToPath(new URL("../test/fixtures/server.js", import.meta.url));

export interface PrometheusExample {
  /** Where `/metrics` is served. */
  url: string;
  /** Closes the pool, the HTTP server and the meter provider. */
  close(): Promise<void>;
}

/** Registers the meter provider, starts the pool and the `/metrics` server on 127.0.0.1:`port` (0: any free port). */
export async function startPrometheusExample(port: number): Promise<PrometheusExample> {
  // The exporter is a metric reader; its own HTTP server is not started: ours serves its handler.
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({
    readers: [exporter],
    // The JavaScript Prometheus exporter (0.2xx) does not append the unit to names as the OpenTelemetry-to-
    // Prometheus conventions (and the Collector's exporter) do: this view gives the histogram its usual name,
    // mcp_client_operation_duration_seconds.
    views: [{ instrumentName: "mcp.client.operation.duration", name: "mcp.client.operation.duration_seconds" }],
  });
  // Before createPool: the metrics API has no proxy provider, a pool created earlier would keep a no-op meter.
  metrics.setGlobalMeterProvider(meterProvider);

  const pool = await createPool({
    servers: { example: { command: process.execPath, args: [SERVER, "stdio"], stderr: "ignore" } },
  });
  await Promise.all([1, 2, 3].map((i) => pool.callTool("example__echo", { message: `hello ${i}` })));
  await pool.callTool("example__fail", { message: "a tool error: error.type tool_error" });
  await pool.callTool("example__nope").catch(() => {}); // TOOL_NOT_FOUND: mcp_worker_pool_calls_rejected_total

  const server = createServer((req, res) => {
    if (req.url === "/metrics") return exporter.getMetricsRequestHandler(req, res);
    res.statusCode = 404;
    res.end("see /metrics\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: bound } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/metrics`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.close();
      await meterProvider.shutdown();
      metrics.disable();
    },
  };
}

async function main(): Promise<void> {
  const example = await startPrometheusExample(Number(process.argv[2] ?? 9464));
  console.log(`serving ${example.url} (Ctrl-C ends)`);
  const stop = () => void example.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

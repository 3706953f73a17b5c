/**
 * What telemetry adds to one request on the main thread, measured in isolation (no threads, no server, so
 * no noise from them): the hooks a request goes through (`begin` at admission, then, when it has telemetry,
 * `sent`, `answered` and `end`), per request, with `@opentelemetry/api` loaded and
 *
 *   off — nothing registered (what every pool pays once the package is installed);
 *   on  — the SDK registered as bench/otel.ts does (spans, W3C propagation into `_meta`, the histogram).
 *
 *   node dist/bench/telemetry-cost.js [requests=200000]
 *
 * Prints ns per request for each. See docs/performance.md, "Telemetry".
 */
import { performance } from "node:perf_hooks";
import { KINDS, type Call } from "../src/call.js";
import type { ServerConfig } from "../src/config.js";
import type { Connection } from "../src/connection.js";
import { createTelemetry, loadTelemetry, type Telemetry } from "../src/telemetry.js";
import { registerOtel } from "./otel.js";

const server = { name: "bench", transport: "stdio" } as ServerConfig;
const conn = { serverInfo: { protocolVersion: "2025-11-25" }, verdict: { kind: "legacy" }, mcpSessionId: undefined } as unknown as Connection;
const gauges = { inFlight: () => 0, queued: () => 0, workers: () => 1, sessions: () => 0 };

function request(telemetry: Telemetry, i: number): void {
  const call = { kind: KINDS.callTool, server, tool: "echo", params: { name: "echo", arguments: { message: "hi" } }, session: undefined, telemetry: undefined, span: undefined, startedAt: 0, id: i + 1, retried: false } as unknown as Call;
  telemetry.begin(call);
  if (call.telemetry) {
    call.telemetry.sent(call, conn);
    call.telemetry.answered(call, 1_000_000_000 + i);
    call.telemetry.end(call, undefined, { content: [] });
  }
}

function measure(telemetry: Telemetry, n: number): number {
  for (let i = 0; i < Math.min(n, 20_000); i++) request(telemetry, i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < n; i++) request(telemetry, i);
  return ((performance.now() - t0) * 1e6) / n;
}

const n = Number(process.argv[2] ?? 200_000);
await loadTelemetry();
const off = measure(createTelemetry([server], gauges), n);
const shutdown = registerOtel();
const on = measure(createTelemetry([server], gauges), n);
await shutdown();
console.log(`telemetry per request, main thread: off ${off.toFixed(0)} ns   on ${on.toFixed(0)} ns   (${n} requests)`);

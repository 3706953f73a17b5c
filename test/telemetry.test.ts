/**
 * Telemetry with the real OpenTelemetry SDK (registered once for this file: ava runs each file in its own
 * process): spans, trace context carried to the servers, metrics. One pool over three fixture servers
 * (stdio legacy, Streamable HTTP legacy, Streamable HTTP 2026-07-28) and one that never comes up, shared by
 * every test; serial, and each test reads only the spans of its own trace.
 */
import test from "ava";
import { context, metrics, propagation, SpanKind, SpanStatusCode, trace, type Span } from "@opentelemetry/api";
import { AsyncHooksContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { DataPointType, MeterProvider, MetricReader, type MetricData } from "@opentelemetry/sdk-metrics";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { createPool, McpPoolError, type McpPool } from "../src/index.js";
import { DURATION_BUCKETS } from "../src/telemetry.js";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { ERA_REVISION, readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, type HttpFixture } from "./helpers/fixtures.js";

class TestReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
context.setGlobalContextManager(new AsyncHooksContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const reader = new TestReader();
// Registered before createPool: the metrics API has no proxy provider (README, "Telemetry").
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
const tracer = trace.getTracer("telemetry-test");

/** A server whose tool schema's pattern backtracks forever on WEDGING_TEXT: it wedges its worker (see worker-heartbeat.test). */
const HAZARD_SERVER = fileURLToPath(new URL("./fixtures/hazard-server.js", import.meta.url));
const WEDGING_TEXT = `${"a".repeat(41)}!`;

/** The stdio server's events (one line per call it got): the kill -9 test waits until the server has its call. */
const pipeEvents = tmpFile("telemetry-events");
let pool: McpPool;
let legacyHttp: HttpFixture;
let modernHttp: HttpFixture;

test.before(async () => {
  [legacyHttp, modernHttp] = await Promise.all([startHttpFixture("http", [], undefined, "legacy"), startHttpFixture("http", [], undefined, "modern")]);
  pool = await createPool({
    servers: {
      pipe: { ...stdioServer([], { FIXTURE_EVENTS: pipeEvents }), stderr: "ignore" },
      web: { url: legacyHttp.url },
      modern: { url: modernHttp.url },
      // Nothing listens there: never ready.
      gone: { url: "http://127.0.0.1:9/mcp", reconnect: { maxAttempts: 0 } },
      hazard: { command: process.execPath, args: [HAZARD_SERVER], stderr: "ignore" },
    },
    limits: { maxInFlightPerConnection: 2, maxQueue: 1, acquireTimeoutMs: 5_000, drainTimeoutMs: 1_000, workerHeartbeatMs: 1_500 },
  });
});

test.after.always(async () => {
  await pool?.close();
  await Promise.all([legacyHttp?.close(), modernHttp?.close()]);
  rmSync(pipeEvents, { force: true });
});

const textOf = (result: { content: unknown }): string => (result.content as Array<{ text: string }>)[0]!.text;

/**
 * Runs `fn` inside a parent span of the test's own, ends it, and returns the pool's spans of that trace
 * (those whose parent is the test's span) with the parent's ids.
 */
async function traced<T>(fn: () => Promise<T>): Promise<{ value: T | undefined; error: unknown; children: ReadableSpan[]; traceId: string; parentId: string }> {
  return tracer.startActiveSpan("test parent", async (parent: Span) => {
    let value: T | undefined;
    let error: unknown;
    try {
      value = await fn();
    } catch (e) {
      error = e;
    }
    parent.end();
    const { traceId, spanId } = parent.spanContext();
    const children = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId && s.parentSpanContext?.spanId === spanId);
    return { value, error, children, traceId, parentId: spanId };
  });
}

function only(t: import("ava").ExecutionContext, children: ReadableSpan[]): ReadableSpan {
  t.is(children.length, 1, `one span of the pool: ${children.map((s) => s.name).join(", ")}`);
  return children[0]!;
}

const SERVERS = [
  { server: "pipe", transport: "pipe", version: ERA_REVISION.legacy, session: false },
  { server: "web", transport: "tcp", version: ERA_REVISION.legacy, session: true },
  { server: "modern", transport: "tcp", version: ERA_REVISION.modern, session: false },
] as const;

for (const s of SERVERS) {
  test.serial(`a tool call on ${s.server} is one CLIENT span under the caller's, named and attributed as the conventions say`, async (t) => {
    const { value, children } = await traced(() => pool.callTool(`${s.server}__request_id`, {}));
    const span = only(t, children);
    t.is(span.name, "tools/call request_id");
    t.is(span.kind, SpanKind.CLIENT);
    const a = span.attributes;
    t.is(a["mcp.method.name"], "tools/call");
    t.is(a["gen_ai.operation.name"], "execute_tool");
    t.is(a["gen_ai.tool.name"], "request_id");
    t.is(a["mcp.protocol.version"], s.version);
    t.is(a["network.transport"], s.transport);
    t.is(a["mcp_worker_pool.server"], s.server);
    // The JSON-RPC id the server saw.
    t.is(a["jsonrpc.request.id"], String((JSON.parse(textOf(value!)) as { id: unknown }).id));
    if (s.transport === "tcp") {
      t.is(a["server.address"], "127.0.0.1");
      t.is(a["server.port"], Number(new URL(s.server === "web" ? legacyHttp.url : modernHttp.url).port));
    } else {
      t.false("server.address" in a);
    }
    if (s.session) t.regex(String(a["mcp.session.id"]), /.+/);
    else t.false("mcp.session.id" in a);
    t.false("error.type" in a);
    t.false("mcp_worker_pool.retried" in a);
    t.is(span.status.code, SpanStatusCode.UNSET);
  });

  test.serial(`the traceparent ${s.server} receives in _meta is the pool's span in the caller's trace`, async (t) => {
    const { value, children, traceId } = await traced(() => pool.callTool(`${s.server}__meta`, {}));
    const span = only(t, children);
    const meta = JSON.parse(textOf(value!)) as { traceparent?: string };
    t.is(meta.traceparent, `00-${traceId}-${span.spanContext().spanId}-01`);
  });
}

test.serial("a prompt and a resource read are spans named by their method, with their target's attribute", async (t) => {
  const prompt = only(t, (await traced(() => pool.getPrompt("modern__greet", { name: "Ada" }))).children);
  t.is(prompt.name, "prompts/get greet");
  t.is(prompt.attributes["gen_ai.prompt.name"], "greet");
  t.is(prompt.attributes["mcp.method.name"], "prompts/get");
  t.false("gen_ai.operation.name" in prompt.attributes);
  const read = only(t, (await traced(() => pool.readResource("fixture://static/hello.txt", { server: "web" }))).children);
  t.is(read.name, "resources/read");
  t.is(read.attributes["mcp.resource.uri"], "fixture://static/hello.txt");
  t.is(read.attributes["mcp.protocol.version"], ERA_REVISION.legacy);
});

test.serial("a session's call carries the session id", async (t) => {
  const session = pool.session("user-7");
  t.teardown(() => session.close());
  const span = only(t, (await traced(() => session.callTool("pipe__echo", { message: "hi" }))).children);
  t.is(span.attributes["mcp_worker_pool.session_id"], "user-7");
});

test.serial("an isError result is a span with error.type tool_error and status ERROR, and still the caller's result", async (t) => {
  const { value, error, children } = await traced(() => pool.callTool("modern__fail", { message: "nope" }));
  t.is(error, undefined);
  t.true(value?.isError);
  const span = only(t, children);
  t.is(span.attributes["error.type"], "tool_error");
  t.is(span.status.code, SpanStatusCode.ERROR);
});

/** Failures: each is a span with the McpPoolError's code as error.type and status ERROR. */
const FAILURES: Array<{ code: McpPoolError["code"]; name: string; run: () => Promise<unknown> }> = [
  { code: "TOOL_NOT_FOUND", name: "tools/call pipe__nope", run: () => pool.callTool("pipe__nope", {}) },
  { code: "INVALID_ARGUMENTS", name: "tools/call echo", run: () => pool.callTool("web__echo", { message: 42 }) },
  { code: "TIMEOUT", name: "tools/call slow", run: () => pool.callTool("pipe__slow", { ms: 5_000 }, { timeoutMs: 100 }) },
  { code: "ABORTED", name: "tools/call slow", run: () => pool.callTool("modern__slow", { ms: 5_000 }, { signal: AbortSignal.timeout(100) }) },
  { code: "PROMPT_NOT_FOUND", name: "prompts/get nope", run: () => pool.getPrompt("nope") },
  { code: "RESOURCE_NOT_FOUND", name: "resources/read", run: () => pool.readResource("fixture://nowhere") },
  { code: "SERVER_UNAVAILABLE", name: "resources/read", run: () => pool.readResource("fixture://static/hello.txt", { server: "gone" }) },
];

for (const f of FAILURES) {
  test.serial(`a request failing with ${f.code} is a span with error.type ${f.code} and status ERROR`, async (t) => {
    const { error, children } = await traced(f.run);
    t.true(error instanceof McpPoolError, String(error));
    t.is((error as McpPoolError).code, f.code);
    const span = only(t, children);
    t.is(span.name, f.name);
    t.is(span.kind, SpanKind.CLIENT);
    t.is(span.attributes["error.type"], f.code);
    t.is(span.status.code, SpanStatusCode.ERROR);
  });
}

test.serial("a call refused because the queue is full is POOL_EXHAUSTED; the call that waited has a queued event", async (t) => {
  // Two in flight fill the one connection (maxInFlightPerConnection 2), one waits (maxQueue 1), the fourth is refused.
  const { children } = await traced(async () => {
    const busy = [0, 1, 2].map(() => pool.callTool("web__slow", { ms: 300 }));
    await t.throwsAsync(pool.callTool("web__slow", { ms: 300 }), { instanceOf: McpPoolError, message: /queue full/ });
    await Promise.all(busy);
  });
  t.is(children.length, 4);
  const refused = children.filter((s) => s.attributes["error.type"] === "POOL_EXHAUSTED");
  t.is(refused.length, 1);
  const queued = children.filter((s) => s.events.some((e) => e.name === "queued"));
  t.is(queued.length, 1);
  t.false("error.type" in queued[0]!.attributes);
});

test.serial("a call in flight when its server is killed (kill -9) is retried: retried and reconnect-wait events, the retried attribute", async (t) => {
  const pid = pool.stats().servers.pipe!.connections[0]!.pid!;
  const { value, children } = await traced(async () => {
    const calls = () => readEvents(pipeEvents).filter((e: { event: string; tool?: string; pid: number }) => e.event === "call" && e.tool === "slow" && e.pid === pid).length;
    const before = calls();
    const call = pool.callTool("pipe__slow", { ms: 800 }, { timeoutMs: 30_000 });
    // Killed once the server has the request: a request lost before it was sent is routed again, not retried.
    await waitFor(() => calls() > before, 5_000);
    process.kill(pid, "SIGKILL");
    return call;
  });
  t.regex(textOf(value!), /done after/);
  const span = only(t, children);
  t.is(span.attributes["mcp_worker_pool.retried"], true, JSON.stringify({ attributes: span.attributes, events: span.events.map((e) => e.name) }));
  const events = span.events.map((e) => e.name);
  t.true(events.includes("retried"), events.join(","));
  t.true(events.includes("reconnect-wait"), events.join(","));
  t.false("error.type" in span.attributes);
});

test.serial("a call whose worker dies under it is a span with error.type CONNECTION_LOST", async (t) => {
  const { error, children } = await traced(() => pool.callTool("hazard__match", { text: WEDGING_TEXT }, { timeoutMs: 30_000 }));
  t.is((error as McpPoolError).code, "CONNECTION_LOST");
  const span = only(t, children);
  t.is(span.attributes["error.type"], "CONNECTION_LOST");
  t.is(span.status.code, SpanStatusCode.ERROR);
  await waitFor(() => pool.stats().servers.hazard!.state === "ready", 15_000);
});

function metric(all: MetricData[], name: string): MetricData {
  const found = all.find((m) => m.descriptor.name === name);
  if (!found) throw new Error(`no metric ${name} among ${all.map((m) => m.descriptor.name).join(", ")}`);
  return found;
}

test.serial("metrics: the duration histogram, the pool's gauges, rejections by error.type and restarts by server", async (t) => {
  await pool.callTool("pipe__echo", { message: "after" });
  const { resourceMetrics, errors } = await reader.collect();
  t.deepEqual(errors, []);
  const all = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "mcp-worker-pool").flatMap((s) => s.metrics);

  const duration = metric(all, "mcp.client.operation.duration");
  t.is(duration.descriptor.unit, "s");
  t.is(duration.dataPointType, DataPointType.HISTOGRAM);
  const points = duration.dataPoints as Array<{ attributes: Record<string, unknown>; value: { count: number; buckets: { boundaries: number[] } } }>;
  const echo = points.find((p) => p.attributes["gen_ai.tool.name"] === "echo" && p.attributes["mcp_worker_pool.server"] === "pipe" && !("error.type" in p.attributes));
  t.truthy(echo, JSON.stringify(points.map((p) => p.attributes)));
  t.is(echo!.attributes["mcp.method.name"], "tools/call");
  t.true(echo!.value.count >= 2);
  t.deepEqual(echo!.value.buckets.boundaries, DURATION_BUCKETS);
  t.truthy(points.find((p) => p.attributes["error.type"] === "tool_error" && p.attributes["gen_ai.tool.name"] === "fail"));
  t.truthy(points.find((p) => p.attributes["error.type"] === "TIMEOUT"));
  t.truthy(points.find((p) => p.attributes["mcp.method.name"] === "prompts/get" && !("gen_ai.tool.name" in p.attributes)));

  const gauge = (name: string): number => {
    const m = metric(all, name);
    t.is(m.dataPointType, DataPointType.GAUGE);
    return (m.dataPoints[0] as { value: number }).value;
  };
  t.is(gauge("mcp_worker_pool.calls.in_flight"), 0);
  t.is(gauge("mcp_worker_pool.calls.queued"), 0);
  t.is(gauge("mcp_worker_pool.workers.active"), pool.stats().workers.active);
  t.true(gauge("mcp_worker_pool.workers.active") >= 4);
  t.is(gauge("mcp_worker_pool.sessions.active"), pool.stats().sessions.active);

  const counted = (name: string, key: string): Record<string, number> =>
    Object.fromEntries(metric(all, name).dataPoints.map((p) => [String(p.attributes[key]), p.value as number]));
  const rejected = counted("mcp_worker_pool.calls.rejected", "error.type");
  t.is(rejected.POOL_EXHAUSTED, 1);
  t.is(rejected.TOOL_NOT_FOUND, 1);
  t.is(rejected.SERVER_UNAVAILABLE, 1);
  t.is(rejected.PROMPT_NOT_FOUND, 1);
  t.false("ABORTED" in rejected, "an abort is the caller's, not a refusal");
  t.false("TIMEOUT" in rejected, "the call that timed out was sent");
  const restarts = counted("mcp_worker_pool.connection.restarts", "mcp_worker_pool.server");
  t.is(restarts.pipe, 1);
  t.is(restarts.hazard, 1);
  t.false("web" in restarts);
  t.deepEqual(counted("mcp_worker_pool.worker.crashes", "mcp_worker_pool.server"), { hazard: 1 });
});

/**
 * Telemetry: OpenTelemetry spans and metrics by the MCP semantic conventions (docs/telemetry.md), through
 * the global providers the application registers; the library never registers one. `@opentelemetry/api`
 * is an optional peer dependency, imported here only, once (`loadTelemetry`, awaited by `createPool`).
 *
 * The rest of the pool sees `Telemetry`: `begin(call)` at admission gives a request its `telemetry`
 * (itself) only when something is recorded for it (a tracer provider or a meter provider is registered,
 * or the caller's context carries a span); every other hook hangs off `call.telemetry`, so a request
 * with telemetry off costs one check at admission and nothing after.
 */
import type * as OtelApi from "@opentelemetry/api";
import type { Call } from "./call.js";
import type { ServerConfig } from "./config.js";
import type { Connection } from "./connection.js";
import type { McpPoolError } from "./errors.js";

type Api = typeof OtelApi;
type Attributes = OtelApi.Attributes;

/** The instrumentation scope's name (tracer and meter). */
export const INSTRUMENTATION_SCOPE = "mcp-worker-pool";

/** The semantic conventions' bucket advice for `mcp.client.operation.duration` (seconds). */
export const DURATION_BUCKETS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

/** What the observable gauges read from the pool, at collection time. */
export interface GaugeSource {
  inFlight(): number;
  queued(): number;
  workers(): number;
  sessions(): number;
}

/** Where a request waited: for a connection with room (`queued`), or for its server to come back (`reconnect-wait`). */
export type CallEvent = "queued" | "retried" | "reconnect-wait";

export interface Telemetry {
  /** Admission: from here on, the request's span (if any) and duration run; its trace context goes into `params._meta`. */
  begin(call: Call): void;
  /** A request refused before admission (unknown name, bad arguments, closed pool, session limit). */
  refused(method: string, target: string | undefined, error: McpPoolError): void;
  /** A ready connection was lost (its server or its worker died), and is being reopened. */
  restarted(server: string): void;
  /** A worker thread died under a connection. */
  crashed(server: string): void;
  /** The pool closed: its gauges are no longer observed. */
  close(): void;
}

/** What a request with telemetry calls on (`call.telemetry`). */
export interface CallTelemetry {
  event(call: Call, name: CallEvent): void;
  /** Sent on `conn`: what the connection knows (protocol version, session id). */
  sent(call: Call, conn: Connection): void;
  /** The JSON-RPC id its last request went out with (see WireResult.rpcId). */
  answered(call: Call, rpcId: number): void;
  end(call: Call, error: McpPoolError | undefined, result: unknown): void;
}

const OFF: Telemetry = {
  begin() {},
  refused() {},
  restarted() {},
  crashed() {},
  close() {},
};

let api: Api | undefined;
let loading: Promise<void> | undefined;

/**
 * Imports `@opentelemetry/api` once per process (the module cache would too; this also remembers its
 * absence). Never rejects: without the package, telemetry is off.
 */
export function loadTelemetry(): Promise<void> {
  loading ??= import("@opentelemetry/api").then(
    (m) => {
      // Node's ESM view of the CommonJS build has every named export we use.
      api = m;
    },
    () => {},
  );
  return loading;
}

/** The pool's telemetry: off when `@opentelemetry/api` was not loaded (see loadTelemetry). */
export function createTelemetry(servers: readonly ServerConfig[], gauges: GaugeSource): Telemetry {
  return api ? new OtelTelemetry(api, servers, gauges) : OFF;
}

interface SpanStart {
  name: string;
  options: OtelApi.SpanOptions;
}

/** The request kinds' span attribute for their target, when they have one. */
function targetAttribute(method: string): string | undefined {
  return method === "tools/call" ? "gen_ai.tool.name" : method === "prompts/get" ? "gen_ai.prompt.name" : undefined;
}

/**
 * A request's span name (`{mcp.method.name} {target}`, or the method alone), with the attributes that follow
 * from its method and target added to `attributes`: admitted and refused requests are named alike.
 */
function describe(method: string, target: string | undefined, attributes: Attributes): string {
  attributes["mcp.method.name"] = method;
  if (method === "tools/call") attributes["gen_ai.operation.name"] = "execute_tool";
  const targetName = targetAttribute(method);
  if (targetName === undefined || target === undefined) return method;
  attributes[targetName] = target;
  return `${method} ${target}`;
}

class OtelTelemetry implements Telemetry, CallTelemetry {
  // The API's parts, held here: reading them off the module namespace per request costs more than the rest of the off path.
  readonly #trace: Api["trace"];
  readonly #context: Api["context"];
  readonly #propagation: Api["propagation"];
  readonly #ProxyTracerProvider: Api["ProxyTracerProvider"];
  readonly #ERROR: OtelApi.SpanStatusCode;
  readonly #tracer: OtelApi.Tracer;
  /** The tracer provider the global proxy delegates to while no application registered one. */
  readonly #noopProvider: OtelApi.TracerProvider;
  /** Whether a meter provider was registered when the pool was created (the metrics API has no proxy). */
  readonly #metrics: boolean;
  readonly #duration: OtelApi.Histogram;
  readonly #rejected: OtelApi.Counter;
  readonly #restarts: OtelApi.Counter;
  readonly #crashes: OtelApi.Counter;
  readonly #meter: OtelApi.Meter;
  readonly #observables: OtelApi.Observable[];
  readonly #observe: OtelApi.BatchObservableCallback;
  /** Per server: the attributes every span of it carries (transport, address, the pool's server name). */
  readonly #serverAttributes = new Map<string, Attributes>();
  readonly #clientSpan: OtelApi.SpanOptions;
  /** See #start. */
  readonly #starts = new Map<string, SpanStart>();

  constructor(otel: Api, servers: readonly ServerConfig[], gauges: GaugeSource) {
    this.#trace = otel.trace;
    this.#context = otel.context;
    this.#propagation = otel.propagation;
    this.#ProxyTracerProvider = otel.ProxyTracerProvider;
    this.#ERROR = otel.SpanStatusCode.ERROR;
    this.#tracer = otel.trace.getTracer(INSTRUMENTATION_SCOPE);
    this.#noopProvider = new otel.ProxyTracerProvider().getDelegate();
    this.#clientSpan = { kind: otel.SpanKind.CLIENT };
    const meter = (this.#meter = otel.metrics.getMeter(INSTRUMENTATION_SCOPE));
    this.#metrics = meter !== otel.createNoopMeter();
    this.#duration = meter.createHistogram("mcp.client.operation.duration", {
      description: "Duration of MCP requests as the client sees them, from admission to settlement.",
      unit: "s",
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.#rejected = meter.createCounter("mcp_worker_pool.calls.rejected", { description: "Requests the pool refused without sending them to a server.", unit: "{request}" });
    this.#restarts = meter.createCounter("mcp_worker_pool.connection.restarts", { description: "Ready connections lost and reopened (server or worker died).", unit: "{restart}" });
    this.#crashes = meter.createCounter("mcp_worker_pool.worker.crashes", { description: "Worker threads that died under a connection.", unit: "{crash}" });
    const inFlight = meter.createObservableGauge("mcp_worker_pool.calls.in_flight", { description: "Requests admitted and not settled.", unit: "{request}" });
    const queued = meter.createObservableGauge("mcp_worker_pool.calls.queued", { description: "Requests waiting for a connection.", unit: "{request}" });
    const workers = meter.createObservableGauge("mcp_worker_pool.workers.active", { description: "Worker threads holding a connection.", unit: "{thread}" });
    const sessions = meter.createObservableGauge("mcp_worker_pool.sessions.active", { description: "Open sessions.", unit: "{session}" });
    this.#observables = [inFlight, queued, workers, sessions];
    this.#observe = (result) => {
      result.observe(inFlight, gauges.inFlight());
      result.observe(queued, gauges.queued());
      result.observe(workers, gauges.workers());
      result.observe(sessions, gauges.sessions());
    };
    if (this.#metrics) meter.addBatchObservableCallback(this.#observe, this.#observables);
    for (const server of servers) this.#serverAttributes.set(server.name, serverAttributes(server));
  }

  /** A tracer provider is registered (the global proxy delegates to something other than its no-op). */
  #tracing(): boolean {
    const provider = this.#trace.getTracerProvider();
    return !(provider instanceof this.#ProxyTracerProvider) || provider.getDelegate() !== this.#noopProvider;
  }

  begin(call: Call): void {
    const otel = this.#trace;
    const tracing = this.#tracing();
    const context = this.#context.active();
    // Off: nothing registered, and no span of the caller's to carry on.
    if (!tracing && !this.#metrics && otel.getSpan(context) === undefined) return;
    call.telemetry = this;
    call.startedAt = performance.now();
    let carried = context;
    if (tracing) {
      const start = this.#start(call.server.name, call.kind.method, call.tool);
      let options = start.options;
      // What varies per request (a URI, a session) on a copy; the rest is the cached entry's (the SDK copies it).
      const uri = call.params.uri;
      if (typeof uri === "string" && call.kind.method.startsWith("resources/")) options = { kind: options.kind!, attributes: { ...options.attributes, "mcp.resource.uri": uri } };
      if (call.session) options = { kind: options.kind!, attributes: { ...options.attributes, "mcp_worker_pool.session_id": call.session.id } };
      const span = this.#tracer.startSpan(start.name, options, context);
      if (span.isRecording()) call.span = span;
      carried = otel.setSpan(context, span);
    }
    if (otel.getSpan(carried) === undefined) return;
    // The MCP spec reserves `traceparent`/`tracestate` in `_meta`; the application's propagator writes them.
    const carrier: Record<string, string> = {};
    this.#propagation.inject(carried, carrier);
    if (Object.keys(carrier).length === 0) return;
    const own = call.params._meta as Record<string, unknown> | undefined;
    call.params = { ...call.params, _meta: own ? { ...own, ...carrier } : carrier };
  }

  /**
   * A span's name and start options for (server, method, target), made once: the attributes that never
   * change between its requests. Bounded by the catalogs (servers × tools and prompts).
   */
  #start(server: string, method: string, target: string | undefined): SpanStart {
    const key = target === undefined ? `${server}\n${method}` : `${server}\n${method}\n${target}`;
    let start = this.#starts.get(key);
    if (start) return start;
    const attributes: Attributes = { ...this.#serverAttributes.get(server) };
    start = { name: describe(method, target, attributes), options: { kind: this.#clientSpan.kind!, attributes } };
    this.#starts.set(key, start);
    return start;
  }

  event(call: Call, name: CallEvent): void {
    (call.span as OtelApi.Span | undefined)?.addEvent(name);
  }

  sent(call: Call, conn: Connection): void {
    const span = call.span as OtelApi.Span | undefined;
    if (!span) return;
    const version = conn.serverInfo?.protocolVersion;
    if (version !== undefined) span.setAttribute("mcp.protocol.version", version);
    // The legacy era's Mcp-Session-Id; the 2026-07-28 era has no session.
    if (conn.mcpSessionId !== undefined && conn.verdict?.kind !== "modern") span.setAttribute("mcp.session.id", conn.mcpSessionId);
  }

  answered(call: Call, rpcId: number): void {
    (call.span as OtelApi.Span | undefined)?.setAttribute("jsonrpc.request.id", String(rpcId));
  }

  end(call: Call, error: McpPoolError | undefined, result: unknown): void {
    const method = call.kind.method;
    const errorType = error ? error.code : method === "tools/call" && (result as { isError?: unknown } | undefined)?.isError === true ? "tool_error" : undefined;
    const span = call.span as OtelApi.Span | undefined;
    if (span) {
      if (call.retried) span.setAttribute("mcp_worker_pool.retried", true);
      if (errorType !== undefined) {
        span.setAttribute("error.type", errorType);
        span.setStatus({ code: this.#ERROR, message: error ? error.message : "the tool's result has isError: true" });
      }
      span.end();
    }
    if (!this.#metrics) return;
    const attributes: Attributes = { "mcp.method.name": method, "mcp_worker_pool.server": call.server.name };
    if (method === "tools/call" && call.tool !== undefined) attributes["gen_ai.tool.name"] = call.tool;
    if (errorType !== undefined) attributes["error.type"] = errorType;
    this.#duration.record((performance.now() - call.startedAt) / 1000, attributes);
    // Never handed to a connection: the pool refused it (queue full, server unavailable, closing, its
    // deadline while it waited). A caller's abort is the caller's choice, not a refusal.
    if (error && call.id === 0 && error.code !== "ABORTED") this.#rejected.add(1, { "error.type": error.code });
  }

  refused(method: string, target: string | undefined, error: McpPoolError): void {
    if (this.#metrics && error.code !== "ABORTED") this.#rejected.add(1, { "error.type": error.code });
    if (!this.#tracing()) return;
    const attributes: Attributes = { ...(error.server !== undefined ? this.#serverAttributes.get(error.server) : undefined), "error.type": error.code };
    const name = describe(method, target, attributes);
    if (method.startsWith("resources/") && target !== undefined) attributes["mcp.resource.uri"] = target;
    const span = this.#tracer.startSpan(name, { ...this.#clientSpan, attributes }, this.#context.active());
    span.setStatus({ code: this.#ERROR, message: error.message });
    span.end();
  }

  restarted(server: string): void {
    if (this.#metrics) this.#restarts.add(1, { "mcp_worker_pool.server": server });
  }

  crashed(server: string): void {
    if (this.#metrics) this.#crashes.add(1, { "mcp_worker_pool.server": server });
  }

  close(): void {
    if (this.#metrics) this.#meter.removeBatchObservableCallback(this.#observe, this.#observables);
  }
}

/** `network.transport` (`pipe` for stdio, `tcp` for HTTP), `server.address`/`server.port` (HTTP), the pool's server name. */
function serverAttributes(server: ServerConfig): Attributes {
  const attributes: Attributes = { "mcp_worker_pool.server": server.name, "network.transport": server.transport === "stdio" ? "pipe" : "tcp" };
  if (server.url !== undefined) {
    try {
      const url = new URL(server.url);
      attributes["server.address"] = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
      attributes["server.port"] = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
    } catch {
      // The config's schema checked the URL; nothing to add if it still does not parse.
    }
  }
  return attributes;
}

/**
 * One request from admission to settlement: a tool call, a resource read, a prompt, a completion, a
 * subscription. The model is piscina's `TaskInfo` and undici's handler object: queues hold the `Call`, a
 * connection maps its wire id to it, its one timer (armed at admission) and its abort listener point at
 * it, and `settle()` ends it, exactly once. A reader follows one request by following this object.
 *
 * A request kind is an entry of `KINDS`: its MCP method, whether it is safe to send again after the
 * connection was lost with it, and what the caller gets of the server's result.
 */
import type { Progress, ToolAnnotations } from "@modelcontextprotocol/client";
import { callSafely } from "./callbacks.js";
import type { ServerConfig } from "./config.js";
import { McpPoolError } from "./errors.js";
import { wasNotSent, type RequestMethod } from "./common/protocol.js";
import type { Connection } from "./connection.js";
import type { ServerGroup } from "./server-group.js";
import type { Session } from "./sessions.js";
import type { CallTelemetry } from "./telemetry.js";

export interface RequestKind {
  readonly method: RequestMethod;
  /**
   * Sent again (once) after the connection was lost with it in flight: `always` for reads, lists and
   * subscriptions (nothing changes on the server), `annotated` for a tool the server marks read-only or
   * idempotent, `never` otherwise. A request never sent (NOT_SENT) is always routed again.
   */
  readonly retry: "always" | "annotated";
  /** A subscription's verb: on success, its connection holds the URI (`add`) or no longer (`remove`). */
  readonly subscription?: "add" | "remove";
  /** What the caller gets of the server's result (default: the result as sent). */
  readonly unwrap?: (result: unknown) => unknown;
}

/** The request kinds: adding one is an entry here and a method on the facade. */
export const KINDS = {
  callTool: { method: "tools/call", retry: "annotated" },
  readResource: { method: "resources/read", retry: "always" },
  subscribe: { method: "resources/subscribe", retry: "always", subscription: "add" },
  unsubscribe: { method: "resources/unsubscribe", retry: "always", subscription: "remove" },
  getPrompt: { method: "prompts/get", retry: "always" },
  complete: { method: "completion/complete", retry: "always", unwrap: (r) => (r as { completion: unknown }).completion },
} as const satisfies Record<string, RequestKind>;

/** What calls add up to, pool-wide (admission.ts keeps it). */
export interface Ledger {
  /** Whether the pool is closing: nothing is routed again then. */
  readonly closing: boolean;
  finished(call: Call, ok: boolean): void;
}

export interface CallInit {
  kind: RequestKind;
  server: ServerConfig;
  group: ServerGroup;
  session: Session | undefined;
  /** What errors name as `tool`: the tool's or prompt's own name; undefined for resources. */
  tool: string | undefined;
  params: Record<string, unknown>;
  timeoutMs: number;
  signal: AbortSignal | undefined;
  onProgress: ((progress: Progress) => void) | undefined;
  /** A tool's annotations (for the `annotated` retry rule). */
  annotations: ToolAnnotations | undefined;
  /** Only this connection may carry it (an unsubscribe goes where its subscription is). */
  via?: Connection | undefined;
  ledger: Ledger;
  resolve: (value: unknown) => void;
  reject: (error: McpPoolError) => void;
}

export class Call {
  readonly kind: RequestKind;
  readonly server: ServerConfig;
  /** The group that serves it (the server's shared replicas, or one session's connection). */
  readonly group: ServerGroup;
  readonly session: Session | undefined;
  readonly tool: string | undefined;
  /** As sent; telemetry.ts adds the caller's trace context to its `_meta` at admission. */
  params: Record<string, unknown>;
  readonly deadline: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
  readonly onProgress: ((progress: Progress) => void) | undefined;
  /** Sent again once after its connection was lost with it (see RequestKind.retry). */
  retried = false;
  readonly via: Connection | undefined;
  /** When it started waiting in its group's queue; 0 while not queued. */
  queuedAt = 0;
  /** The connection it is in flight on, and its id there (the data plane's `WireRequest.id`). */
  conn: Connection | undefined;
  id = 0;
  settled = false;
  /** Aborts, with the call's end, the handlers answering requests its server made for it (made on first ask only). */
  asks: AbortController | undefined;
  /** Set at admission only when something is recorded for it (telemetry.ts): its span, its start (performance.now()). */
  telemetry: CallTelemetry | undefined;
  span: unknown;
  startedAt = 0;

  readonly #annotations: ToolAnnotations | undefined;
  readonly #ledger: Ledger;
  readonly #resolve: (value: unknown) => void;
  readonly #reject: (error: McpPoolError) => void;
  readonly #timer: NodeJS.Timeout;

  constructor(init: CallInit) {
    this.kind = init.kind;
    this.server = init.server;
    this.group = init.group;
    this.session = init.session;
    this.tool = init.tool;
    this.params = init.params;
    this.timeoutMs = init.timeoutMs;
    this.deadline = Date.now() + init.timeoutMs;
    this.signal = init.signal;
    this.onProgress = init.onProgress;
    this.via = init.via;
    this.#annotations = init.annotations;
    this.#ledger = init.ledger;
    this.#resolve = init.resolve;
    this.#reject = init.reject;
    // The one timer of the request, wherever it is when the deadline comes (queue, connection, retry).
    this.#timer = setTimeout(expire, init.timeoutMs, this);
    // The call itself is the listener (handleEvent): no closure per call.
    init.signal?.addEventListener("abort", this, { once: true });
  }

  /** Ends the call with its result or its error; later calls do nothing. */
  settle(error: McpPoolError | undefined, result?: unknown): void {
    if (this.settled) return;
    this.settled = true;
    clearTimeout(this.#timer);
    this.signal?.removeEventListener("abort", this);
    if (this.queuedAt !== 0) this.group.dequeue(this);
    // Still on a connection: it was cut short here (deadline, abort); the host is told to cancel it.
    if (this.conn) this.conn.abandon(this, error?.message ?? "cancelled");
    this.asks?.abort(new Error(`the call that caused it ended${error ? `: ${error.message}` : ""}`));
    this.#ledger.finished(this, error === undefined);
    if (this.telemetry) this.telemetry.end(this, error, result);
    if (error) this.#reject(error);
    else this.#resolve(this.kind.unwrap ? this.kind.unwrap(result) : result);
  }

  /** Its connection gave it back without an answer (lost, closed, or refused it unsent): routed again or failed. */
  returned(error: McpPoolError): void {
    if (this.settled) return;
    const notSent = wasNotSent(error);
    if (notSent ? !this.#ledger.closing && this.deadline > Date.now() : error.code === "CONNECTION_LOST" && this.#mayRetry()) {
      if (!notSent) {
        this.retried = true;
        this.telemetry?.event(this, "retried");
      }
      // Routed again once the connection that gave it back has finished updating its state.
      queueMicrotask(() => this.route());
      return;
    }
    this.settle(notSent ? withoutNotSent(error) : error);
  }

  /** Hands the call to its group, which sends it on a connection now or queues it. */
  route(): void {
    if (this.settled) return;
    // A retry is routed a tick after its first attempt failed: the caller may have aborted meanwhile.
    if (this.signal?.aborted) return this.settle(this.error("ABORTED", "aborted before the request was routed again"));
    this.group.acquire(this);
  }

  /** The caller's progress callback (the caller's code, inside a port listener: it must not throw into it). */
  progress(progress: Progress): void {
    if (this.onProgress) callSafely(this.onProgress, progress, "onProgress");
  }

  error(code: McpPoolError["code"], message: string): McpPoolError {
    return new McpPoolError(code, message, { server: this.server.name, tool: this.tool });
  }

  /** The signal's abort (the call is its listener). */
  handleEvent(): void {
    if (this.settled) return;
    if (this.queuedAt !== 0) return this.settle(this.error("ABORTED", "aborted while waiting for a connection"));
    this.settle(this.error("ABORTED", abortMessage(this.signal!)));
  }

  #mayRetry(): boolean {
    if (this.retried || this.#ledger.closing || this.server.retry === "never") return false;
    if (this.deadline <= Date.now() || this.signal?.aborted) return false;
    if (this.kind.retry === "always") return true;
    return this.#annotations?.readOnlyHint === true || this.#annotations?.idempotentHint === true;
  }
}

/** The deadline: where the call waits decides the code (see ServerGroup.expired). */
function expire(call: Call): void {
  if (call.settled) return;
  if (call.queuedAt !== 0) return call.settle(call.group.expired(call, true));
  const what = call.kind.method === "tools/call" ? "tool call" : call.kind.method;
  call.settle(call.error("TIMEOUT", `${what} timed out after ${call.timeoutMs} ms`));
}

function abortMessage(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  try {
    return reason instanceof Error ? `aborted: ${reason.message}` : reason !== undefined ? `aborted: ${String(reason)}` : "aborted";
  } catch {
    // A reason that cannot be made a string (no prototype, or a throwing toString): the caller's value.
    return "aborted";
  }
}

/**
 * An unsent call's error as its caller sees it: NOT_SENT in `data` is the pool's own routing marker
 * (the pool is closing or the deadline passed, so the call is not routed again), not the caller's business.
 */
function withoutNotSent(error: McpPoolError): McpPoolError {
  const { server, tool, mcpCode, cause } = error;
  return new McpPoolError(error.code, error.message, { server, tool, mcpCode, cause });
}

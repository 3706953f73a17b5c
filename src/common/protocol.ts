/**
 * Imported by both the main thread (`src/`) and the workers (`workers/`), as is process-group.ts:
 * the two planes between a connection's host and the main thread (see docs/design.md, "The planes"),
 * the spec a host is started with, and the errors that cross.
 */
import type { Implementation, LoggingLevel, PriorDiscovery, Progress, Prompt, Resource, ResourceTemplateType as ResourceTemplate, ServerCapabilities, Tool } from "@modelcontextprotocol/client";

/** Every failure a caller can see is one of these codes (see CONTRACT.md). */
export const ERROR_CODES = [
  "CONFIG_INVALID",
  "TOOL_NOT_FOUND",
  "INVALID_ARGUMENTS",
  "SERVER_UNAVAILABLE",
  "CONNECTION_LOST",
  "TIMEOUT",
  "ABORTED",
  "POOL_EXHAUSTED",
  "SESSION_LIMIT",
  "POOL_CLOSED",
  "PROTOCOL_ERROR",
  "RESULT_TOO_LARGE",
  "RESOURCE_NOT_FOUND",
  "PROMPT_NOT_FOUND",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** An error as it crosses the port: plain data, rebuilt into `McpPoolError` on the main thread. */
export interface WireError {
  code: ErrorCode;
  message: string;
  mcpCode?: number;
  data?: unknown;
}

/** The result of an RPC that can fail in an expected way: the worker returns it, never throws it. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: WireError };

export type ConnectionState = "connecting" | "ready" | "reconnecting" | "failed" | "closing" | "closed";

/**
 * A server's era as one of its connections found it: `{ kind: "modern", discover }` (the result of its
 * `server/discover`) or `{ kind: "legacy" }`. The main thread keeps the latest per server and hands it to
 * every later connection of that server, which then connects without probing (v2's `connect({ prior })`).
 */
export type Verdict = PriorDiscovery;

/** What a server said of itself at its last handshake (`pool.serverInfo(name)`). */
export interface ServerInfo {
  /** The protocol version in use on the connection, e.g. "2025-11-25". */
  protocolVersion: string | undefined;
  serverInfo: Implementation;
  instructions?: string;
  capabilities: ServerCapabilities;
}

export interface ReconnectPolicy {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  probeIntervalMs: number;
}

export interface KeepalivePolicy {
  intervalMs: number;
  timeoutMs: number;
  failures: number;
}

/** Everything a worker needs to own one connection. Plain data (structured-cloneable). */
export interface ConnectionSpec {
  connectionId: string;
  server: string;
  transport: "stdio" | "http" | "sse";
  command?: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  stderr: "inherit" | "ignore";
  url?: string;
  headers: Record<string, string>;
  connectTimeoutMs: number;
  reconnect: ReconnectPolicy;
  keepalive: KeepalivePolicy;
  /** `auto`, `legacy`, or a pinned revision of the stateless era (see config `protocol`). */
  protocol: string;
  /** The server's era as its connections last found it, if any did: tried first, probed again if it fails. */
  prior?: Verdict | undefined;
  maxMessageBytes: number;
  /** Niceness of the worker thread and its server processes (see `limits.workerNice`). */
  nice: number;
  /**
   * Resource URIs this connection is subscribed to: a replacement host (its worker died) subscribes to
   * them again at its first connect, as any host does after a reopen.
   */
  subscriptions: string[];
  /**
   * The client capabilities this connection declares (`sampling`, `elicitation` form and URL, `roots`):
   * only those a handler on the main thread can answer. The host registers a request handler on its
   * client for each; the SDK refuses any other server request with -32601.
   */
  clientCapabilities: ClientCapabilityKind[];
  /** The log level the pool set for this server (`pool.setLoggingLevel`), applied at each connect. */
  logLevel?: LoggingLevel | undefined;
  /** HTTP/SSE: the headers come from a function on the main thread, asked before each connect (`MainControl.headers`). */
  dynamicHeaders?: boolean;
}

/** A client capability the pool declares when a handler for it exists. */
export type ClientCapabilityKind = "sampling" | "elicitation" | "roots";

/**
 * What the piscina task receives: the connection's spec and its two ports, one per plane.
 * - `data`: the data plane. Typed messages, batched per tick: `ToHost` in, `ToMain` out. Everything a
 *   caller waits on travels here (requests, their results and progress), and the heartbeat.
 * - `control`: the control plane, comlink only. The main thread calls `HostControl` (open, cancel,
 *   close); the host calls back the `MainControl` exposed on the port it got in `open()` (state with the catalogs,
 *   pid, logs, resource updates).
 */
export interface HostTask {
  spec: ConnectionSpec;
  data: import("node:worker_threads").MessagePort;
  control: import("node:worker_threads").MessagePort;
}

// ---- the data plane -------------------------------------------------------------------------

/** The MCP requests that travel the request path (see src/call.ts for what each one means to the pool). */
export const REQUEST_METHODS = [
  "tools/call",
  "resources/read",
  "resources/list",
  "resources/templates/list",
  "resources/subscribe",
  "resources/unsubscribe",
  "prompts/get",
  "prompts/list",
  "completion/complete",
] as const;
export type RequestMethod = (typeof REQUEST_METHODS)[number];

/**
 * One request from the main thread: `params` as the MCP request's. Its `_meta`, if any, holds only the
 * caller's trace context (`traceparent`, `tracestate`); the host adds the rest (progress token, envelope).
 */
export interface WireRequest {
  /** The main thread's id of the request on this connection (not the JSON-RPC id, which the host picks). */
  id: number;
  method: RequestMethod;
  params: Record<string, unknown>;
  /** Time left until the request's deadline when it was sent. */
  timeoutMs: number;
  /** The caller wants progress notifications. */
  progress: boolean;
  /**
   * 2026-07-28, shared connections: what the caller's session can answer beyond what its connection
   * declares, declared in this request's `_meta` only (that era declares capabilities per request).
   */
  capabilities?: ClientCapabilityKind[];
  /** Its span records (telemetry): the result says which JSON-RPC id the request went out with (`WireResult.rpcId`). */
  traced?: true;
}

/**
 * Answers to `WireRequest`s, flat: four slots per answer (`RESULT_SLOTS`), no object of ours around each.
 * For each: its request's `id`; `true` and the server's result as sent, or `false` and the `WireError` saying
 * why there is none; for a `traced` request the JSON-RPC id of its last message to the server (telemetry), else
 * `undefined`. The main thread deserializes every object and key of what crosses the port, and looking keys up
 * and finding hidden-class transitions is what a structured clone costs beyond the bytes: wrapped answers
 * (`{ id, outcome: { ok, value } }` in `{ op, results }`) tripled the keys of a small tool result. Write with
 * `pushResult`; read slot by slot, or with `outcomeAt`.
 */
export type WireResults = unknown[];

export const RESULT_SLOTS = 4;

/** Appends one answer to a batch. */
export function pushResult(batch: WireResults, id: number, outcome: Outcome<unknown>, rpcId: number | undefined): void {
  if (outcome.ok) batch.push(id, true, outcome.value, rpcId);
  else batch.push(id, false, outcome.error, rpcId);
}

/** The answer at slot `i` of a batch (a multiple of RESULT_SLOTS) as an Outcome. */
export function outcomeAt(batch: WireResults, i: number): Outcome<unknown> {
  return batch[i + 1] === true ? { ok: true, value: batch[i + 2] } : { ok: false, error: batch[i + 2] as WireError };
}

/** Main thread → host, on the data port. */
export type ToHost =
  /** All the requests a connection got in one tick, in one message. */
  | { op: "requests"; requests: WireRequest[] }
  /**
   * The heartbeat, sent while requests are in flight: the host answers "pong" straight from its port
   * listener. A worker that does not within `limits.workerHeartbeatMs` is wedged (its thread runs but no
   * longer reads the port) and is replaced, as a dead one is.
   */
  | { op: "ping" };

/** Host → main thread, on the data port. */
export type ToMain =
  /** Answers to requests, as they finished within one tick of the host: a bare array (see WireResults). */
  | WireResults
  | { op: "progress"; id: number; progress: Progress }
  | { op: "pong" }
  /** The worker's entry launched the connection's first server, before the host's code loaded (workers/host-entry.ts). */
  | { op: "spawned"; pid: number; startTime: string | undefined };

/**
 * The error a connection reports for a worker thread that could not start its host: the host's module failed
 * to load, in the worker's entry (workers/host-entry.ts) or as piscina loaded the entry itself (src/supervisor.ts).
 */
export function startFailure(error: unknown): Error {
  return new Error(`worker thread failed to start: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

export const PING: ToHost = { op: "ping" };
export const PONG: ToMain = { op: "pong" };

// ---- the control plane (comlink) --------------------------------------------------------------

/** What a server lists, as one connection last listed it. Empty for a capability the server lacks. */
export interface Catalogs {
  tools: Tool[];
  resources: Resource[];
  resourceTemplates: ResourceTemplate[];
  prompts: Prompt[];
}

/** A connection's state as its host reports it. */
export interface HostState {
  state: ConnectionState;
  /** Connect attempts that failed since the connection was last ready (0 while it is recovering normally). */
  failedAttempts: number;
  error?: WireError;
  threadId: number;
  /**
   * With "ready": everything the server listed and said of itself, and the era it was found to speak;
   * `sessionId`: the server's `Mcp-Session-Id` (legacy era over Streamable HTTP), for telemetry.
   */
  ready?: { catalogs: Catalogs; server: ServerInfo; verdict: Verdict; pid?: number; sessionId?: string };
}

/**
 * The main thread's side of the control plane, handed to the host in `open()` as a comlink proxy. Each
 * method but `serverRequest` returns nothing and never throws: the host does not wait for the main thread.
 */
export interface MainControl {
  state(state: HostState): void;
  /** A list changed on a ready connection (list_changed, or a re-listing after the listen stream broke). */
  catalogs(changed: Partial<Catalogs>): void;
  /** A server process the host spawned: `startTime` as the worker read it at the spawn (see process-group.ts). */
  pid(pid: number, startTime: string | undefined): void;
  /** A server's log message (`notifications/message`), or the host's own word on a server (a tool skipped as unusable). */
  log(level: LoggingLevel, logger: string | undefined, data: unknown): void;
  /** `notifications/resources/updated` for a URI this connection subscribed to. */
  resourceUpdated(uri: string): void;
  /**
   * A server asks the client (`sampling/createMessage`, `elicitation/create`, `roots/list`): the main
   * thread runs the handler that answers it. `id` is the host's for this ask (see `serverRequestEnded`);
   * `origin` is the `WireRequest.id` of the call that caused it, when the host can tell. Never rejects:
   * the outcome is the handler's answer or the error the server gets.
   */
  serverRequest(id: number, method: string, params: unknown, origin: number | undefined): Promise<Outcome<unknown>>;
  /** The ask `id` is over on the host's side (the server cancelled it, its call ended): its handler's signal aborts. */
  serverRequestEnded(id: number, reason: string): void;
  /** The headers for the next connect (spec `dynamicHeaders`): the pool's and the session's functions, awaited. Never rejects. */
  headers(): Promise<Outcome<Record<string, string>>>;
}

/**
 * The host's side of the control plane (comlink, on the control port). Nothing here throws across the
 * port: what can fail in an expected way is a request on the data plane, which returns an `Outcome`.
 */
export interface HostControl {
  /**
   * Starts the connection: the host connects, reports through `main` (a port on which the main thread
   * exposes its `MainControl` with comlink; passed with `comlink.transfer`), and reconnects until closed.
   * A port of our own rather than `comlink.proxy`: the main thread unrefs it, so that a host whose worker
   * never took its end does not keep the process alive.
   */
  open(main: import("node:worker_threads").MessagePort): void;
  /** Cancels a request on the server (`notifications/cancelled`); its result is then dropped. */
  cancel(id: number, reason: string): void;
  /** Closes the transport, ends the server's process group, and lets the task return. */
  close(): Promise<void>;
  /**
   * The server's minimum log level, now and after every reconnect: legacy era `logging/setLevel` (when the
   * server has the `logging` capability), 2026-07-28 in every request's `_meta`. Never rejects.
   */
  setLoggingLevel(level: LoggingLevel): Promise<void>;
}

export function isToHost(data: unknown): data is ToHost {
  return typeof data === "object" && data !== null && typeof (data as { op?: unknown }).op === "string";
}

export function wireError(code: ErrorCode, message: string, extra?: { mcpCode?: number; data?: unknown }): WireError {
  const e: WireError = { code, message };
  if (extra?.mcpCode !== undefined) e.mcpCode = extra.mcpCode;
  if (extra?.data !== undefined) e.data = extra.data;
  return e;
}

/**
 * `data` of an error for a call the host refused before sending it to the server (its link had just
 * died). Such a call is always safe to route again. A marker between the threads and the pool only: it
 * never reaches a caller's error (the pool drops it when it does not route the call again).
 */
export const NOT_SENT = { notSent: true } as const;

export function wasNotSent(error: { data?: unknown }): boolean {
  return (error.data as { notSent?: unknown } | undefined)?.notSent === true;
}

/** JSON-RPC error code a transport uses to turn an oversized message into an error for its request. */
export const RESULT_TOO_LARGE_RPC_CODE = -32099;

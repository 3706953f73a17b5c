/**
 * Imported by both the main thread (`src/`) and the workers (`workers/`), as is process-group.ts:
 * the connection host's RPC interface, the messages it posts, and how errors cross the port.
 */
import type { CallToolResult, Implementation, LoggingLevel, PriorDiscovery, ServerCapabilities, Tool, Progress } from "@modelcontextprotocol/client";

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
}

/** What the piscina task receives. */
export interface HostTask {
  spec: ConnectionSpec;
  port: import("node:worker_threads").MessagePort;
}

export interface CallRequest {
  callId: number;
  name: string;
  args: Record<string, unknown>;
  timeoutMs: number;
  progress: boolean;
}

/** The API a connection host exposes over its port (comlink); tool calls go as `CallBatch`es. */
export interface HostApi {
  /** Cancels a call on the server (`notifications/cancelled`); the call then settles with `ABORTED`. */
  cancel(callId: number, reason: string): void;
  /** Closes the transport, ends the server's process group, and lets the task return. */
  close(): Promise<void>;
}

/** Messages the host posts on its own (no `id`, so comlink's listener ignores them). */
export type HostEvent =
  /** `failedAttempts`: connect attempts that failed since the connection was last ready (0 while it is recovering normally). */
  | { ev: "state"; state: ConnectionState; failedAttempts: number; error?: WireError; threadId: number }
  | { ev: "ready"; tools: Tool[]; pid?: number; threadId: number; server: ServerInfo; verdict: Verdict }
  | { ev: "tools"; tools: Tool[] }
  /** `startTime`: the server's start time as the worker read it at the spawn (see process-group.ts startTimeOf). */
  | { ev: "pid"; pid: number; startTime?: string }
  | { ev: "progress"; callId: number; progress: Progress }
  /** Something the pool's user should know of a server, as an MCP log message (e.g. a tool skipped as unusable). */
  | { ev: "log"; level: LoggingLevel; logger?: string; data: unknown }
  /** Answers to the calls of `CallBatch`es, as they finished within one tick of the host. */
  | { ev: "results"; results: CallResult[] }
  /** The answer to a `Ping`. */
  | { ev: "pong" };

export interface CallResult {
  callId: number;
  outcome: Outcome<CallToolResult>;
}

/**
 * Tool calls posted straight on the port: all the calls a connection got in one tick, in one message.
 * The per-call path skips comlink (its proxy, request id, finalizer registration and promises per call
 * cost more main-thread time than the rest of the call), and one message per tick each way instead of
 * one per call saves most cross-thread wake-ups under load, the largest cost left (see bench/).
 * comlink still carries cancel and close.
 */
export interface CallBatch {
  op: "calls";
  calls: CallRequest[];
}

export function isCallBatch(data: unknown): data is CallBatch {
  return typeof data === "object" && data !== null && (data as { op?: unknown }).op === "calls";
}

/**
 * The main thread's heartbeat on the port, sent while calls are in flight: the host answers it with a
 * "pong" event straight from its port listener. A worker that does not within `limits.workerHeartbeatMs`
 * is wedged (its thread runs but no longer reads the port) and is replaced, as a dead one is.
 */
export interface Ping {
  op: "ping";
}

export const PING: Ping = { op: "ping" };
export const PONG: HostEvent = { ev: "pong" };

export function isPing(data: unknown): data is Ping {
  return typeof data === "object" && data !== null && (data as { op?: unknown }).op === "ping";
}

export function isHostEvent(data: unknown): data is HostEvent {
  return typeof data === "object" && data !== null && "ev" in data && !("id" in data);
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

import { transferHandlers, type TransferHandler } from "comlink";

/**
 * Replaces comlink's "throw" handler so that an unexpected throw across the port keeps its `code`,
 * `mcpCode` and `data`. Both sides install it; only the main thread passes `rebuild`.
 */
export function installErrorTransfer(rebuild?: (wire: WireError) => Error): void {
  const previous = transferHandlers.get("throw") as TransferHandler<unknown, unknown> | undefined;
  const handler: TransferHandler<{ value: unknown }, WireError> = {
    canHandle: (value): value is { value: unknown } =>
      (previous?.canHandle(value) ?? false),
    serialize: ({ value }) => {
      const err = value as { code?: unknown; message?: unknown; mcpCode?: unknown; data?: unknown };
      const code = typeof err?.code === "string" && (ERROR_CODES as readonly string[]).includes(err.code)
        ? (err.code as ErrorCode)
        : "PROTOCOL_ERROR";
      const wire = wireError(code, String(err?.message ?? err), {
        mcpCode: typeof err?.mcpCode === "number" ? err.mcpCode : undefined,
      });
      return [wire, []];
    },
    deserialize: (wire) => {
      throw rebuild ? rebuild(wire) : Object.assign(new Error(wire.message), wire);
    },
  };
  transferHandlers.set("throw", handler as TransferHandler<unknown, unknown>);
}

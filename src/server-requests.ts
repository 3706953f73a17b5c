/**
 * Requests from servers (sampling, elicitation, roots), answered on the main thread by the user's
 * handlers: who answers which request (a session's handlers, else the pool's), what a connection
 * declares, and the bounds of one answer (its `ctx.signal`, its late answer dropped).
 *
 * How a request is tied to the call that caused it: in the 2026-07-28 era it comes back as that call's
 * `input_required` result, so the worker knows the call exactly; in the legacy era it arrives on the
 * connection unasked: over Streamable HTTP on the stream of the call it is related to (the worker notes
 * which, workers/http-calls.ts), else the worker ties it to a call only when exactly one request of the
 * pool is in flight on that connection (see README, "Requests from servers").
 */
import type { CreateMessageRequest, CreateMessageResult, ElicitRequest, ElicitResult, Root } from "@modelcontextprotocol/client";
import { wireError, type ClientCapabilityKind, type Outcome, type WireError } from "./common/protocol.js";
import { KINDS, type Call } from "./call.js";
import { headerValuesProblem } from "./validate.js";

export type { Root };

/** What a handler is told of the request it answers. */
export interface ServerRequestContext {
  /** The configured name of the server that asks. */
  server: string;
  /** The session whose connection or call the request belongs to, if any. */
  sessionId?: string;
  /** The tool whose call caused the request, when the pool can tell (see the module's doc). */
  tool?: string;
  /**
   * Aborts when the server cancels the request, the call that caused it ends, or the connection dies.
   * What the handler answers after that is dropped.
   */
  signal: AbortSignal;
}

/** The handlers of the pool (`createPool`'s second argument) or of one session (`pool.session(id, …)`). */
export interface RequestHandlers {
  /** Answers `sampling/createMessage`. Without it (here or on the pool) `sampling` is not declared. */
  onSampling?: (params: CreateMessageRequest["params"], ctx: ServerRequestContext) => CreateMessageResult | Promise<CreateMessageResult>;
  /** Answers `elicitation/create`, form and URL mode. Without it `elicitation` is not declared. */
  onElicitation?: (params: ElicitRequest["params"], ctx: ServerRequestContext) => ElicitResult | Promise<ElicitResult>;
  /** Answers `roots/list`: a list, or a function of the request's context. Without it `roots` is not declared. */
  roots?: Root[] | ((ctx: ServerRequestContext) => Root[] | Promise<Root[]>);
}

/** What a `headers` function is told of the connection it gives headers for. */
export interface HeadersContext {
  server: string;
  /** The session whose own connection this is; undefined for a shared connection. */
  sessionId?: string;
}

/** HTTP headers for a connection: awaited before each connect and reconnect of the connections it applies to. */
export type HeadersFunction = (ctx: HeadersContext) => Record<string, string> | Promise<Record<string, string>>;

/** The client capability each server request needs, by its MCP method. */
export const KIND_OF_METHOD: Readonly<Record<string, ClientCapabilityKind>> = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
};

function has(handlers: RequestHandlers | undefined, kind: ClientCapabilityKind): boolean {
  if (!handlers) return false;
  if (kind === "sampling") return typeof handlers.onSampling === "function";
  if (kind === "elicitation") return typeof handlers.onElicitation === "function";
  return handlers.roots !== undefined;
}

/** The capabilities a connection declares: those some handler of `sets` can answer. */
export function declaredKinds(...sets: (RequestHandlers | undefined)[]): ClientCapabilityKind[] {
  return (["sampling", "elicitation", "roots"] as const).filter((kind) => sets.some((h) => has(h, kind)));
}

/** The handlers that answer `kind`: the first of `sets` (session's first, then the pool's) that has one. */
export function handlersFor(kind: ClientCapabilityKind, ...sets: (RequestHandlers | undefined)[]): RequestHandlers | undefined {
  return sets.find((h) => has(h, kind));
}

/** JSON-RPC "method not found", what a server gets for a request nobody here answers. */
export const METHOD_NOT_FOUND = -32601;
const INTERNAL_ERROR = -32603;

/**
 * Runs the handler for one server request. Never rejects: an outcome, `ok` with the handler's answer, or an
 * error that the worker gives the server as a JSON-RPC error. Once `signal` aborts, the outcome is an
 * error at once and whatever the handler answers later is dropped.
 */
export async function answer(method: string, params: unknown, handlers: RequestHandlers | undefined, ctx: ServerRequestContext): Promise<Outcome<unknown>> {
  const kind = KIND_OF_METHOD[method];
  if (kind === undefined || !handlers || !has(handlers, kind)) {
    return { ok: false, error: wireError("PROTOCOL_ERROR", `no handler for ${method}`, { mcpCode: METHOD_NOT_FOUND }) };
  }
  const { signal } = ctx;
  if (signal.aborted) return aborted(method, signal);
  let onAbort: (() => void) | undefined;
  const cut = new Promise<Outcome<unknown>>((resolve) => {
    onAbort = () => resolve(aborted(method, signal));
    signal.addEventListener("abort", onAbort, { once: true });
  });
  const run = (async (): Promise<Outcome<unknown>> => {
    try {
      let value: unknown;
      if (kind === "sampling") value = await handlers.onSampling!(params as CreateMessageRequest["params"], ctx);
      else if (kind === "elicitation") value = await handlers.onElicitation!(params as ElicitRequest["params"], ctx);
      else value = { roots: typeof handlers.roots === "function" ? await handlers.roots(ctx) : handlers.roots };
      if (value === null || typeof value !== "object") {
        return { ok: false, error: wireError("PROTOCOL_ERROR", `the ${handlerName(kind)} handler answered ${method} with ${value === null ? "null" : typeof value}, not a result object`, { mcpCode: INTERNAL_ERROR }) };
      }
      // Through structured cloning to the worker: a result that cannot be cloned fails here, not there.
      return { ok: true, value: structuredClone(value) };
    } catch (error) {
      return { ok: false, error: wireError("PROTOCOL_ERROR", `the ${handlerName(kind)} handler failed on ${method}: ${messageOf(error)}`, { mcpCode: INTERNAL_ERROR }) };
    }
  })();
  try {
    return await Promise.race([run, cut]);
  } finally {
    signal.removeEventListener("abort", onAbort!);
  }
}

function aborted(method: string, signal: AbortSignal): Outcome<never> {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : "cancelled";
  return { ok: false, error: wireError("ABORTED", `${method} ended before its handler answered: ${why}`, { mcpCode: INTERNAL_ERROR }) };
}

function handlerName(kind: ClientCapabilityKind): string {
  return kind === "sampling" ? "onSampling" : kind === "elicitation" ? "onElicitation" : "roots";
}

function messageOf(error: unknown): string {
  try {
    return error instanceof Error ? error.message : String(error);
  } catch {
    return "(an error that cannot be shown)";
  }
}

/** Who a group's connections serve: what routing a server's request and a connect's headers need to know. */
export interface Audience {
  server: string;
  /** A session's group: that session's id (its connections are its own). */
  sessionId: string | undefined;
  sessionHandlers: RequestHandlers | undefined;
  poolHandlers: RequestHandlers | undefined;
  /** What the group's connections declare. */
  declared: ClientCapabilityKind[];
}

/**
 * Routing of a server's request: a session's connection asks its session's handlers; a shared one, the
 * handlers of the session whose call caused it (when known); both fall back on the pool's. A session's
 * handler never answers for another session's connection or call.
 */
export function routeServerRequest(a: Audience, call: Call | undefined, method: string, params: unknown, signal: AbortSignal): Promise<Outcome<unknown>> {
  const kind = KIND_OF_METHOD[method];
  const session = a.sessionId !== undefined ? undefined : call?.session;
  const own = a.sessionId !== undefined ? a.sessionHandlers : session?.handlers;
  const sessionId = a.sessionId ?? session?.id;
  const handlers = kind === undefined ? undefined : handlersFor(kind, own, a.poolHandlers);
  const ctx: ServerRequestContext = { server: a.server, signal };
  if (sessionId !== undefined) ctx.sessionId = sessionId;
  if (call?.kind === KINDS.callTool && call.tool !== undefined) ctx.tool = call.tool;
  return answer(method, params, handlers, ctx);
}

/**
 * 2026-07-28 on a shared connection: the kinds `call`'s session has handlers for that the connection does
 * not declare. That era declares capabilities per request, so a session's handlers answer its calls'
 * input requests there even when the pool has none; the legacy era declares once per connection.
 */
export function moreCapabilities(a: Audience, call: Call): ClientCapabilityKind[] | undefined {
  if (a.sessionId !== undefined || !call.session) return undefined;
  const more = declaredKinds(call.session.handlers).filter((kind) => !a.declared.includes(kind));
  return more.length > 0 ? more : undefined;
}

/** A connect's headers, or why there are none: `cause` is what the function threw (it stays on the main thread). */
export type HeadersOutcome = { ok: true; value: Record<string, string> } | { ok: false; error: WireError; cause?: unknown };

/**
 * A connection's headers for its next connect: the server's (with a session's fixed ones), under the pool's
 * function's, under the session's function's. Never rejects: a function that throws, or gives something
 * that is not headers, fails that connect attempt with its error.
 */
export async function connectHeaders(a: Audience, fixed: Record<string, string>, poolFn: HeadersFunction | undefined, sessionFn: HeadersFunction | undefined): Promise<HeadersOutcome> {
  const ctx: HeadersContext = { server: a.server };
  if (a.sessionId !== undefined) ctx.sessionId = a.sessionId;
  const merged: Record<string, string> = { ...fixed };
  for (const [fn, name] of [[poolFn, "the pool's headers function"], [sessionFn, "the session's headers function"]] as const) {
    if (!fn) continue;
    let got: unknown;
    try {
      got = await fn({ ...ctx });
    } catch (error) {
      return { ok: false, error: wireError("SERVER_UNAVAILABLE", `${name} threw: ${messageOf(error)}`), cause: error };
    }
    const problem = headerValuesProblem(got);
    if (problem !== undefined) return { ok: false, error: wireError("SERVER_UNAVAILABLE", `${name} gave no valid headers: ${problem}`) };
    Object.assign(merged, got);
  }
  return { ok: true, value: merged };
}

/**
 * What each request method of the request path means to the host: how its result is checked, and how
 * a JSON-RPC error answer to it becomes a pool error. A method is one entry here; the path itself
 * (requests.ts) is the same for all of them.
 *
 * Results are returned as the server sent them. The checks refuse only a result of the wrong shape (a
 * read without `contents`, a list without its array), which the caller could not use: PROTOCOL_ERROR.
 */
import { INVALID_PARAMS } from "@modelcontextprotocol/client";
import { RESULT_TOO_LARGE_RPC_CODE, wireError, type RequestMethod, type WireError } from "../src/common/protocol.js";
import { checkToolResult, isPlainObject, type ResultCheck } from "./call-result.js";

/** JSON-RPC "resource not found" (the 2025 spec's; v2 servers send INVALID_PARAMS with `data.uri` instead). */
export const RESOURCE_NOT_FOUND_RPC_CODE = -32002;

/** A JSON-RPC error answer, as it came. */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

export interface MethodEntry {
  /** Checks the result of a `complete` answer (its 2026-07-28 `resultType` seen to before: call-result.ts eraCheck). */
  check(result: unknown): ResultCheck;
  /** The pool error for an error answer that no rule common to all methods took (see rpcError). */
  error(e: RpcError, params: Record<string, unknown>): WireError;
  /** It changes the connection's resource subscriptions (subscriptions.ts): 2026-07-28 has no such verbs. */
  subscription?: "subscribe" | "unsubscribe";
}

export const METHODS: Record<RequestMethod, MethodEntry> = {
  "tools/call": { check: checkToolResult, error: toolError },
  "resources/read": { check: hasArray("contents"), error: resourceError },
  "resources/list": { check: hasArray("resources"), error: paramsError },
  "resources/templates/list": { check: hasArray("resourceTemplates"), error: paramsError },
  "resources/subscribe": { check: isObject, error: resourceError, subscription: "subscribe" },
  "resources/unsubscribe": { check: isObject, error: resourceError, subscription: "unsubscribe" },
  "prompts/get": { check: hasArray("messages"), error: promptError },
  "prompts/list": { check: hasArray("prompts"), error: paramsError },
  "completion/complete": { check: completion, error: completionError },
};

/**
 * A JSON-RPC error answer to a request of `method`, as a pool error: our transport's oversize refusal,
 * the spec's "resource not found", then the method's own rules. The message reads as the SDK's
 * `ProtocolError` would; `mcpCode` and `data` are kept.
 */
export function rpcError(method: RequestMethod, raw: unknown, params: Record<string, unknown>): WireError {
  const { code, message, data } = (isPlainObject(raw) ? raw : {}) as { code?: unknown; message?: unknown; data?: unknown };
  if (typeof code !== "number" || typeof message !== "string") return wireError("PROTOCOL_ERROR", `server sent a malformed error answer: ${safeJson(raw)}`);
  if (code === RESULT_TOO_LARGE_RPC_CODE) return wireError("RESULT_TOO_LARGE", `MCP error ${code}: ${message}`);
  // tools/call keeps its mapping of before: a tool may use -32002 for anything.
  if (code === RESOURCE_NOT_FOUND_RPC_CODE && method !== "tools/call") return wireError("RESOURCE_NOT_FOUND", `MCP error ${code}: ${message}`, { mcpCode: code, data });
  return METHODS[method].error({ code, message, data }, params);
}

/** tools/call: the server's "invalid params" is an unknown tool or bad arguments; the rest a protocol error. */
function toolError(e: RpcError): WireError {
  if (e.code !== INVALID_PARAMS) return other(e);
  return as(/unknown tool|tool .*not found|no such tool/i.test(e.message) ? "TOOL_NOT_FOUND" : "INVALID_ARGUMENTS", e);
}

/**
 * resources/read and (un)subscribe: v2 servers answer an unknown resource with INVALID_PARAMS whose
 * `data.uri` names it (the 2026-07-28 spec's MUST, `ResourceNotFoundError`, sent in both eras).
 */
function resourceError(e: RpcError): WireError {
  if (e.code === INVALID_PARAMS && typeof (e.data as { uri?: unknown } | undefined)?.uri === "string") return as("RESOURCE_NOT_FOUND", e);
  return paramsError(e);
}

/** prompts/get: INVALID_PARAMS saying the prompt is unknown (no spec code for it: the words of the SDKs). */
function promptError(e: RpcError): WireError {
  if (e.code === INVALID_PARAMS && UNKNOWN_PROMPT.test(e.message)) return as("PROMPT_NOT_FOUND", e);
  return paramsError(e);
}

/** completion/complete: a `ref/prompt` naming an unknown prompt is that prompt not found. */
function completionError(e: RpcError, params: Record<string, unknown>): WireError {
  if (e.code === INVALID_PARAMS && (params.ref as { type?: unknown } | undefined)?.type === "ref/prompt" && UNKNOWN_PROMPT.test(e.message)) return as("PROMPT_NOT_FOUND", e);
  return paramsError(e);
}

function paramsError(e: RpcError): WireError {
  return e.code === INVALID_PARAMS ? as("INVALID_ARGUMENTS", e) : other(e);
}

function other(e: RpcError): WireError {
  return as("PROTOCOL_ERROR", e);
}

function as(code: WireError["code"], e: RpcError): WireError {
  return wireError(code, `MCP error ${e.code}: ${e.message}`, { mcpCode: e.code, data: e.data });
}

const UNKNOWN_PROMPT = /unknown prompt|prompt\b.*\bnot found|no such prompt|invalid prompt name/i;

function hasArray(member: string): MethodEntry["check"] {
  return (result) =>
    isPlainObject(result) && Array.isArray(result[member]) ? { ok: true, value: result } : { ok: false, message: `server sent a result without a ${member} array` };
}

function isObject(result: unknown): ResultCheck {
  return isPlainObject(result) ? { ok: true, value: result } : { ok: false, message: "server sent a result that is not an object" };
}

function completion(result: unknown): ResultCheck {
  const inner = isPlainObject(result) ? result.completion : undefined;
  return isPlainObject(inner) && Array.isArray(inner.values) ? { ok: true, value: result as Record<string, unknown> } : { ok: false, message: "server sent a completion result without completion.values" };
}

export function safeJson(value: unknown): string {
  try {
    return String(JSON.stringify(value)).slice(0, 200);
  } catch {
    return String(value);
  }
}

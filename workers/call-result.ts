/**
 * The `result` of a response in the 2026-07-28 era (eraCheck), and of a tools/call (checkCallResult),
 * checked the way the SDK checks it (its `CallToolResult`
 * schema), but without zod for the shape almost every server sends: text items and plain structured
 * content. The zod parse walks and copies every content item on each call, one of the larger per-call
 * costs in the worker; a result that is anything else still goes through the SDK's schema, so what is
 * accepted, refused and returned stays exactly the SDK's.
 *
 * In the 2026-07-28 era (`modern`) a result says what it is (`resultType`): `"complete"` is the answer (the
 * member is the wire's, not the caller's, and is taken off); `"input_required"` asks the client for input
 * first. In the legacy era the member means nothing and passes through, as any other unknown member.
 */
import { SERVER_INFO_META_KEY, specTypeSchemas, type CallToolResult } from "@modelcontextprotocol/client";

export type ResultCheck =
  | { ok: true; value: Record<string, unknown> }
  | { ok: false; message: string }
  /** The server asks for input (elicitation, sampling, roots: `asks`) or a retry with its `requestState` first. */
  | { ok: "input_required"; asks: boolean };

const callToolResult = specTypeSchemas.CallToolResult["~standard"];

/**
 * The 2026-07-28 `resultType` of any result: `undefined` for an answer (`"complete"`, taken off, or none),
 * else what the request path is to do instead. In the legacy era the member means nothing and passes.
 */
export function eraCheck(result: unknown, modern: boolean): ResultCheck | undefined {
  if (!modern || !isPlainObject(result) || !("resultType" in result)) return undefined;
  const kind = result.resultType;
  if (kind === "input_required") {
    const requests = result.inputRequests;
    const asks = isPlainObject(requests) && Object.keys(requests).length > 0;
    if (!asks && typeof result.requestState !== "string") return { ok: false, message: "server sent an input_required result with neither inputRequests nor requestState" };
    return { ok: "input_required", asks };
  }
  if (kind !== "complete") return { ok: false, message: `server sent a result of unknown resultType ${JSON.stringify(kind)}` };
  delete result.resultType;
  return undefined;
}

/** A tools/call result, its `resultType` included. */
export function checkCallResult(result: unknown, modern = false): ResultCheck {
  return eraCheck(result, modern) ?? checkToolResult(result);
}

/** A tools/call result whose `resultType` eraCheck has seen to. */
export function checkToolResult(result: unknown): ResultCheck {
  if (isPlainResult(result)) return { ok: true, value: result as unknown as Record<string, unknown> };
  const parsed = callToolResult.validate(result);
  if (parsed.issues === undefined) return { ok: true, value: parsed.value as Record<string, unknown> };
  const issues = parsed.issues.slice(0, 3).map((i) => (i.path?.length ? `${i.path.map((p) => String(typeof p === "object" ? p.key : p)).join(".")}: ${i.message}` : i.message));
  return { ok: false, message: `server sent an invalid tools/call result: ${issues.join("; ")}` };
}

/**
 * True when zod would return this result unchanged: an object whose `content` is an array of
 * `{ type: "text", text }` items (nothing else in them: zod would strip or check it), whose
 * `structuredContent` is absent or a plain object, `isError` absent or boolean, and `_meta` absent or
 * plainly valid (`plainMeta`). Other top-level keys pass through, as the SDK's loose schema lets them.
 */
function isPlainResult(result: unknown): result is CallToolResult {
  if (!isPlainObject(result)) return false;
  const { content, structuredContent, isError } = result;
  if (!Array.isArray(content) || ("_meta" in result && !plainMeta(result._meta))) return false;
  if (isError !== undefined && typeof isError !== "boolean") return false;
  if (structuredContent !== undefined && !isPlainObject(structuredContent)) return false;
  for (const item of content) {
    if (!isPlainObject(item) || item.type !== "text" || typeof item.text !== "string") return false;
    let keys = 0;
    for (const _ in item) keys++;
    if (keys !== 2) return false;
  }
  return true;
}

/**
 * A result `_meta` the schema passes unchanged: a plain object (its schema is loose) whose
 * `io.modelcontextprotocol/serverInfo`, the one member it checks, is absent or exactly what a v2 server
 * puts on every 2026-07-28 result, `{ name, version }` strings. Without this, every 2026-07-28 result went
 * through zod (docs/performance.md, "Where the time goes now").
 */
function plainMeta(meta: unknown): boolean {
  if (!isPlainObject(meta)) return false;
  const info = meta[SERVER_INFO_META_KEY];
  if (info === undefined) return !(SERVER_INFO_META_KEY in meta);
  if (!isPlainObject(info) || typeof info.name !== "string" || typeof info.version !== "string") return false;
  let keys = 0;
  for (const _ in info) keys++;
  return keys === 2;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The `result` of a tools/call response, checked the way the SDK checks it (`CallToolResultSchema`),
 * but without zod for the shape almost every server sends: text items and plain structured content.
 * The zod parse walks and copies every content item on each call, one of the larger per-call costs in
 * the worker; a result that is anything else still goes through the SDK's schema, so what is accepted,
 * refused and returned stays exactly the SDK's.
 */
import { CallToolResultSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";

export type ResultCheck = { ok: true; value: CallToolResult } | { ok: false; message: string };

export function checkCallResult(result: unknown): ResultCheck {
  if (isPlainResult(result)) return { ok: true, value: result };
  const parsed = CallToolResultSchema.safeParse(result);
  if (parsed.success) return { ok: true, value: parsed.data as CallToolResult };
  return { ok: false, message: `server sent an invalid tools/call result: ${parsed.error.message}` };
}

/**
 * True when zod would return this result unchanged: an object whose `content` is an array of
 * `{ type: "text", text }` items (nothing else in them: zod would strip or check it), whose
 * `structuredContent` is absent or a plain object, `isError` absent or boolean, and no `_meta`
 * (checked by its own schema). Other top-level keys pass through, as the SDK's loose schema lets them.
 */
function isPlainResult(result: unknown): result is CallToolResult {
  if (!isPlainObject(result)) return false;
  const { content, structuredContent, isError } = result;
  if (!Array.isArray(content) || "_meta" in result) return false;
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

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * `mcp-worker-pool/ai-sdk`: the pool's tools as a Vercel AI SDK `ToolSet`, so that `generateText({ tools })`,
 * `streamText` and `ToolLoopAgent` call them through the pool (its isolation, deadlines, limits and recovery)
 * instead of through a client of their own. Loaded only when imported: the package's main entry never
 * imports this file, and `ai` is an optional peer dependency.
 *
 * The tools are built the way the AI SDK's own MCP client (`@ai-sdk/mcp`, `createMCPClient().tools()`) builds
 * them, so that a model sees the same thing through either: `dynamicTool`, the input schema through the SDK's
 * `jsonSchema()` helper (with `properties` defaulted to `{}` and extra properties refused), `execute` resolving
 * with the `CallToolResult` as the server sent it, and `toModelOutput` turning that result into model content
 * (text parts as text, images as file data, any other block as its JSON text). Two differences, both on
 * purpose: a result with `isError: true` reaches the model as the SDK's error output (`error-text`), where
 * `@ai-sdk/mcp` sends it as ordinary content; and a result with no content but `structuredContent` reaches
 * the model as that JSON, where `@ai-sdk/mcp` would send nothing.
 */
import { dynamicTool, jsonSchema, type JSONSchema7, type JSONValue, type Tool, type ToolExecutionOptions, type ToolSet } from "ai";
import type { CallToolResult } from "@modelcontextprotocol/client";
import type { PoolTool } from "../catalogs.js";
import type { McpPool } from "../pool.js";
import { selectTools, type AdapterOptions } from "./options.js";

export type { AdapterOptions, ToolPredicate } from "./options.js";

/** What each tool of the set carries in its `metadata` (not sent to the model; found on tool call and result parts as `toolMetadata`). */
export interface PoolToolMetadata {
  [key: string]: string;
  /** The configured server the tool belongs to. */
  server: string;
  /** The server's own name for the tool (the set's key is its pool name). */
  tool: string;
}

/**
 * The pool's tools as an AI SDK `ToolSet`, keyed by pool name (`"github__create_issue"`).
 *
 * - `execute(input, { abortSignal })` calls `pool.callTool(name, input, { sessionId, signal: abortSignal })` and
 *   resolves with the server's `CallToolResult` as sent; what the pool rejects with (an `McpPoolError`: `TIMEOUT`,
 *   `SERVER_UNAVAILABLE`, ...) becomes the SDK's tool error (a `tool-error` part, and an error output for the model).
 *   Aborting `generateText`'s `abortSignal` cancels the call on the server too.
 * - The set is a snapshot of the catalog. The catalog changes (`tools:changed` events) when a server's list does;
 *   build the set where you call the model, `generateText({ model, tools: await aiSdkTools(pool), ... })`, and each
 *   request sees the tools as they are then. Building it reads the pool's catalog in memory (with `sessionId`, the
 *   session's view, which opens its connections on first use). A tool gone since the set was built fails with
 *   `TOOL_NOT_FOUND`, which the model sees as that call's error.
 * - The AI SDK's `toolCallId` is not sent to the server: the pool's `callTool` has no option for it.
 *
 * @throws McpPoolError (as a rejection) INVALID_ARGUMENTS for bad options (an unknown key included) or a bad
 * session id; POOL_CLOSED for a session of a closed pool.
 */
export async function aiSdkTools(pool: McpPool, options?: AdapterOptions): Promise<ToolSet> {
  const { tools, sessionId } = await selectTools("aiSdkTools", pool, options);
  const set: ToolSet = {};
  for (const entry of tools) set[entry.name] = toAiSdkTool(pool, entry, sessionId);
  return set;
}

function toAiSdkTool(pool: McpPool, entry: PoolTool, sessionId: string | undefined): Tool {
  const { name } = entry;
  const { description, inputSchema } = entry.tool;
  const metadata: PoolToolMetadata = { server: entry.server, tool: entry.tool.name };
  const title = entry.tool.title ?? entry.tool.annotations?.title;
  if (title !== undefined) metadata.title = title;
  return dynamicTool({
    ...(description !== undefined ? { description } : {}),
    metadata,
    inputSchema: jsonSchema(modelInputSchema(inputSchema)),
    execute: (input: unknown, { abortSignal }: ToolExecutionOptions<unknown>): Promise<CallToolResult> => {
      const args = (input ?? {}) as Record<string, unknown>;
      if (sessionId === undefined) return pool.callTool(name, args, abortSignal ? { signal: abortSignal } : {});
      return pool.callTool(name, args, abortSignal ? { sessionId, signal: abortSignal } : { sessionId });
    },
    toModelOutput: ({ output }) => toModelOutput(output as CallToolResult),
  });
}

/**
 * The schema the model is given: the tool's own, with `properties` present (some providers require it) and,
 * unless the tool says otherwise, no extra properties (what strict function calling requires), as `@ai-sdk/mcp` does.
 */
function modelInputSchema(schema: PoolTool["tool"]["inputSchema"]): JSONSchema7 {
  const out = { ...schema, properties: schema.properties ?? {} } as JSONSchema7;
  if (!("additionalProperties" in schema)) out.additionalProperties = false;
  return out;
}

/** The subset of the AI SDK's `ToolResultOutput` that this adapter produces. */
export type PoolToolModelOutput =
  | { type: "content"; value: Array<{ type: "text"; text: string } | { type: "file"; mediaType: string; data: { type: "data"; data: string } }> }
  | { type: "json"; value: JSONValue }
  | { type: "error-text"; value: string };

/**
 * What the model sees of a tool's result: text blocks as text, images as file data, every other block (audio,
 * resources, resource links) as its JSON text, as `@ai-sdk/mcp` converts them. `isError: true` → `error-text`
 * (the blocks' text, one per line), so that providers mark it as a failed call.
 */
export function toModelOutput(result: CallToolResult): PoolToolModelOutput {
  const content = Array.isArray(result.content) ? result.content : [];
  if (result.isError === true) {
    const text = content.map((block) => (block.type === "text" ? block.text : JSON.stringify(block))).join("\n");
    return { type: "error-text", value: text === "" ? "the tool reported an error without details" : text };
  }
  if (content.length === 0 && result.structuredContent !== undefined) return { type: "json", value: result.structuredContent as JSONValue };
  return {
    type: "content",
    value: content.map((block) => {
      if (block.type === "text") return { type: "text", text: block.text };
      if (block.type === "image") return { type: "file", mediaType: block.mimeType, data: { type: "data", data: block.data } };
      return { type: "text", text: JSON.stringify(block) };
    }),
  };
}

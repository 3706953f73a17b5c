/**
 * `mcp-worker-pool/langchain`: the pool's tools as LangChain.js `StructuredTool`s (for `model.bindTools(tools)`,
 * LangGraph's `ToolNode`, agents), called through the pool (its isolation, deadlines, limits and recovery)
 * instead of through a client of their own. Loaded only when imported: the package's main entry never imports
 * this file, and `@langchain/core` is an optional peer dependency.
 *
 * Results are mapped the way `@langchain/mcp-adapters` maps them with its defaults
 * (`responseFormat: "content_and_artifact"`, no standard content blocks): the content is the text when the result
 * is one text block, else a list of blocks (text; image as an `image_url` data URL; audio as base64; a resource
 * link as a `file` URL block); embedded resources, `structuredContent` (`{ type: "mcp_structured_content", data }`)
 * and `_meta` (`{ type: "mcp_meta", data }`) go to the artifact. One difference: `@langchain/mcp-adapters` reads a
 * resource that is embedded by reference only (no text, no blob) from the server; the pool has no resource reads
 * yet, so such a block goes to the artifact as it came.
 *
 * A result with `isError: true` stays a result (as `pool.callTool` has it): invoked with a tool call (what agents
 * and `ToolNode` do), the tool returns a `ToolMessage` with `status: "error"`, the server's content and the
 * artifact; invoked with bare arguments, where LangChain has no message to return, it throws a `McpToolError`
 * carrying the result. `@langchain/mcp-adapters` throws in both cases.
 */
import { ToolMessage } from "@langchain/core/messages";
import { DynamicStructuredTool, type StructuredTool } from "@langchain/core/tools";
import type { CallToolResult } from "@modelcontextprotocol/client";
import type { PoolTool } from "../catalogs.js";
import type { McpPool } from "../pool.js";
import { selectTools, type AdapterOptions } from "./options.js";

export type { AdapterOptions, ToolPredicate } from "./options.js";

/** A content block of a tool's LangChain output (LangChain's `MessageContentComplex` shapes). */
export type PoolToolContentBlock = Record<string, unknown> & { type: string };

/** What the tools return as LangChain's `[content, artifact]`. */
export type PoolToolOutput = [content: string | PoolToolContentBlock | PoolToolContentBlock[], artifact: PoolToolContentBlock[]];

/**
 * A tool result with `isError: true`, thrown when the tool was invoked with bare arguments (with a tool call, the
 * tool returns a `ToolMessage` with `status: "error"` instead). Not an `McpPoolError`: the call itself worked.
 */
export class McpToolError extends Error {
  override readonly name = "McpToolError";
  /** The configured server the tool belongs to. */
  readonly server: string;
  /** The server's own tool name. */
  readonly tool: string;
  /** The result as the server sent it. */
  readonly result: CallToolResult;

  constructor(server: string, tool: string, result: CallToolResult) {
    super(`tool "${tool}" of server "${server}" returned an error: ${errorText(result)}`);
    this.server = server;
    this.tool = tool;
    this.result = result;
  }
}

/**
 * The pool's tools as LangChain `StructuredTool`s (`DynamicStructuredTool`, `responseFormat: "content_and_artifact"`),
 * named by their pool names, described by the server's description, with the tool's JSON Schema as `schema`
 * (LangChain checks the input against it before the call; a mismatch throws its `ToolInputParsingException`).
 *
 * - `invoke` calls `pool.callTool(name, args, { sessionId, signal })` with LangChain's `signal` (a `timeout` in the
 *   runnable config arrives as that signal too), so aborting cancels the call on the server. What the pool rejects
 *   with (an `McpPoolError`) is thrown as it is; `ToolNode` turns it into an error `ToolMessage`.
 * - The list is a snapshot of the catalog: call `langchainTools` again after a `tools:changed` event (or per
 *   request: it reads the pool's catalog in memory) and bind the new list.
 * - Each tool's `metadata` holds `{ server, tool, annotations }` (`tool`: the server's own name).
 *
 * @throws McpPoolError (as a rejection) INVALID_ARGUMENTS for bad options (an unknown key included) or a bad
 * session id; POOL_CLOSED for a session of a closed pool.
 */
export async function langchainTools(pool: McpPool, options?: AdapterOptions): Promise<StructuredTool[]> {
  const { tools, sessionId } = await selectTools("langchainTools", pool, options);
  return tools.map((entry) => toLangchainTool(pool, entry, sessionId));
}

function toLangchainTool(pool: McpPool, entry: PoolTool, sessionId: string | undefined): StructuredTool {
  const { name } = entry;
  const { inputSchema } = entry.tool;
  const schema = { ...inputSchema, properties: inputSchema.properties ?? {} };
  return new DynamicStructuredTool({
    name,
    description: entry.tool.description ?? "",
    schema,
    responseFormat: "content_and_artifact",
    metadata: { server: entry.server, tool: entry.tool.name, annotations: entry.tool.annotations },
    func: async (input: unknown, _runManager, config): Promise<PoolToolOutput | [ToolMessage, undefined]> => {
      const args = (input ?? {}) as Record<string, unknown>;
      const signal = config?.signal;
      const callOptions = sessionId === undefined ? (signal ? { signal } : {}) : signal ? { sessionId, signal } : { sessionId };
      const result = await pool.callTool(name, args, callOptions);
      if (result.isError !== true) return toLangchainOutput(result);
      const toolCallId = (config as { toolCall?: { id?: string } } | undefined)?.toolCall?.id;
      if (toolCallId === undefined) throw new McpToolError(entry.server, entry.tool.name, result);
      const [output, artifact] = toLangchainOutput(result);
      const content = typeof output === "string" || Array.isArray(output) ? output : JSON.stringify(output);
      // A ToolMessage as the content is returned by LangChain as it is (its "direct tool output").
      return [new ToolMessage({ status: "error", content, artifact, tool_call_id: toolCallId, name }), undefined];
    },
  });
}

/** `[content, artifact]` of a result, as `@langchain/mcp-adapters` maps them (see the file's note). */
export function toLangchainOutput(result: CallToolResult): PoolToolOutput {
  const content: PoolToolContentBlock[] = [];
  const artifact: PoolToolContentBlock[] = [];
  for (const block of Array.isArray(result.content) ? result.content : []) {
    switch (block.type) {
      case "text":
        content.push({ type: "text", text: block.text });
        break;
      case "image":
        content.push({ type: "image_url", image_url: { url: `data:${block.mimeType};base64,${block.data}` } });
        break;
      case "audio":
        content.push({ type: "audio", source_type: "base64", data: block.data, mime_type: block.mimeType });
        break;
      case "resource_link":
        content.push({ type: "file", source_type: "url", url: block.uri, mime_type: block.mimeType });
        break;
      case "resource":
        artifact.push(block as PoolToolContentBlock);
        break;
      default:
        // A block type newer than this adapter: kept for the model as its JSON text rather than lost.
        content.push({ type: "text", text: JSON.stringify(block) });
    }
  }
  const { structuredContent, _meta: meta } = result;
  if (structuredContent !== undefined) artifact.push({ type: "mcp_structured_content", data: structuredContent });
  if (meta !== undefined) artifact.push({ type: "mcp_meta", data: meta });
  const only = content.length === 1 ? content[0]! : undefined;
  if (only?.type === "text") {
    if (structuredContent === undefined && meta === undefined) return [only.text as string, artifact];
    // One block, not a list: LangChain puts its JSON text into the ToolMessage, so the model sees the structured content too.
    return [{ ...only, ...(structuredContent !== undefined ? { structuredContent } : {}), ...(meta !== undefined ? { meta } : {}) }, artifact];
  }
  return [content, artifact];
}

function errorText(result: CallToolResult): string {
  const texts = (Array.isArray(result.content) ? result.content : []).flatMap((block) => (block.type === "text" ? [block.text] : []));
  return texts.length > 0 ? texts.join("\n") : "(no text)";
}

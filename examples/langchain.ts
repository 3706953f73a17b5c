/**
 * The pool's tools in LangChain.js: a chat model bound to the tools of the MCP server bundled in this repo
 * (test/fixtures/server.ts, over stdio), in a tool-calling loop that runs its calls through the pool.
 * Offline, with a scripted chat model:
 *
 *   npm run build && node dist/examples/langchain.js
 *
 * With a real model, replace `model` below, e.g. `import { ChatOpenAI } from "@langchain/openai"` and
 * `const model = new ChatOpenAI({ model: "gpt-4.1" })`; nothing else changes. The same tools go to LangGraph's
 * `ToolNode` or `createReactAgent({ llm: model, tools })` as they are. In your own project, import from
 * "mcp-worker-pool" and "mcp-worker-pool/langchain".
 */
import { fileURLToPath } from "node:url";
import { BaseChatModel, type BindToolsInput } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, SystemMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { langchainTools } from "../src/adapters/langchain.js"; // "mcp-worker-pool/langchain"
import { createPool } from "../src/index.js"; // "mcp-worker-pool"

const SERVER = fileURLToPath(new URL("../test/fixtures/server.js", import.meta.url));

async function main(): Promise<void> {
  const pool = await createPool({
    servers: { example: { command: process.execPath, args: [SERVER, "stdio"], stderr: "ignore" } },
  });
  try {
    const model: BaseChatModel = new ScriptedChatModel();
    // A snapshot of the catalog: call langchainTools again after a tools:changed event (or per request).
    // `sessionId: "user-42"` would route the calls of session-scoped servers to that user's own connections.
    const tools = await langchainTools(pool, { include: ["example__echo", "example__fail"] });
    if (tools.length === 0) throw new Error(`the example server listed no tools: ${JSON.stringify(pool.stats().servers)}`);
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    const bound = model.bindTools!(tools);

    const messages: BaseMessage[] = [new SystemMessage(pool.serverInfo("example")?.instructions ?? ""), new HumanMessage("Echo 'hello pool', then try the fail tool.")];
    const signal = AbortSignal.timeout(60_000); // aborting cancels the tool call in flight on the server too
    for (let turn = 0; turn < 5; turn++) {
      const reply = (await bound.invoke(messages, { signal })) as AIMessage;
      messages.push(reply);
      if (!reply.tool_calls?.length) break;
      for (const call of reply.tool_calls) {
        // Invoked with the tool call, a tool returns a ToolMessage (status "error" for a result with isError).
        const result = (await byName.get(call.name)!.invoke(call, { signal })) as ToolMessage;
        console.log(`tool ${call.name}(${JSON.stringify(call.args)}) → ${result.status}: ${JSON.stringify(result.content)}`);
        messages.push(result);
      }
    }
    console.log(`answer: ${String(messages.at(-1)!.content)}`);
  } finally {
    await pool.close();
  }
}

/** Stands in for a real chat model: calls example__echo, then example__fail, then reports what it saw. */
class ScriptedChatModel extends BaseChatModel {
  constructor() {
    super({});
  }

  _llmType(): string {
    return "scripted";
  }

  override bindTools(_tools: BindToolsInput[]): ScriptedChatModel {
    return this;
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const seen = messages.filter((m): m is ToolMessage => m instanceof ToolMessage);
    let message: AIMessage;
    if (seen.length === 0) message = new AIMessage({ content: "", tool_calls: [{ type: "tool_call", id: "call-1", name: "example__echo", args: { message: "hello pool" } }] });
    else if (seen.length === 1) message = new AIMessage({ content: "", tool_calls: [{ type: "tool_call", id: "call-2", name: "example__fail", args: { message: "as asked" } }] });
    else message = new AIMessage(`The echo said ${JSON.stringify(seen[0]!.content)}; the fail tool reported ${seen[1]!.status}.`);
    return { generations: [{ text: String(message.content), message }] };
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

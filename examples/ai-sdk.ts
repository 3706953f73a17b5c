/**
 * The pool's tools in the Vercel AI SDK: `generateText` calls the tools of the MCP server bundled in this repo
 * (test/fixtures/server.ts, over stdio) through the pool, then answers. Offline, with the AI SDK's mock model:
 *
 *   npm run build && node dist/examples/ai-sdk.js
 *
 * With a real model, replace `model` below, e.g. `import { openai } from "@ai-sdk/openai"` and
 * `const model = openai("gpt-4.1")`; nothing else changes. In your own project, import from "mcp-worker-pool"
 * and "mcp-worker-pool/ai-sdk".
 */
import { fileURLToPath } from "node:url";
import { generateText, stepCountIs, type LanguageModel } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { aiSdkTools } from "../src/adapters/ai-sdk.js"; // "mcp-worker-pool/ai-sdk"
import { createPool } from "../src/index.js"; // "mcp-worker-pool"

const SERVER = fileURLToPath(new URL("../test/fixtures/server.js", import.meta.url));

async function main(): Promise<void> {
  const pool = await createPool({
    servers: { example: { command: process.execPath, args: [SERVER, "stdio"], stderr: "ignore" } },
  });
  try {
    const model: LanguageModel = scriptedModel();
    // Built per request: a snapshot of the catalog as it is now (a later tools:changed shows in the next one).
    // `sessionId: "user-42"` would route the calls of session-scoped servers to that user's own connections.
    const tools = await aiSdkTools(pool, { include: ["example__increment", "example__get_count"] });
    if (Object.keys(tools).length === 0) throw new Error(`the example server listed no tools: ${JSON.stringify(pool.stats().servers)}`);
    const result = await generateText({
      model,
      tools,
      system: pool.serverInfo("example")?.instructions,
      prompt: "Increment the counter twice, then tell me its value.",
      stopWhen: stepCountIs(5),
      abortSignal: AbortSignal.timeout(60_000), // aborting cancels the tool call in flight on the server too
    });
    for (const step of result.steps) {
      for (const call of step.toolResults) console.log(`tool ${call.toolName}(${JSON.stringify(call.input)}) → ${JSON.stringify(call.output)}`);
      for (const part of step.content) if (part.type === "tool-error") console.log(`tool ${part.toolName} failed: ${String(part.error)}`);
    }
    console.log(`answer: ${result.text}`);
  } finally {
    await pool.close();
  }
}

/**
 * Stands in for a real model: calls example__increment until it has seen two results, then answers with the
 * last result's text (what the AI SDK handed it as the tool's output).
 */
function scriptedModel(): MockLanguageModelV4 {
  const usage = {
    inputTokens: { total: 0, noCache: 0, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: 0, text: 0, reasoning: undefined },
  };
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      const results = prompt.flatMap((m) => (m.role === "tool" ? m.content.flatMap((p) => (p.type === "tool-result" ? [p.output] : [])) : []));
      if (results.length < 2) {
        const toolCallId = `call-${results.length + 1}`;
        return { content: [{ type: "tool-call", toolCallId, toolName: "example__increment", input: "{}" }], finishReason: { unified: "tool-calls", raw: undefined }, usage, warnings: [] };
      }
      const last = results.at(-1)!;
      const said = last.type === "content" && last.value[0]?.type === "text" ? last.value[0].text : JSON.stringify(last);
      return { content: [{ type: "text", text: `The counter is at ${said}.` }], finishReason: { unified: "stop", raw: undefined }, usage, warnings: [] };
    },
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

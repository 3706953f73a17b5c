/**
 * `mcp-worker-pool/langchain` with the real LangChain.js: tools invoked with bare arguments and with tool calls,
 * results mapped as `@langchain/mcp-adapters` maps them, tool-level and pool-level errors, abort, per-session
 * routing, and agent loops (a hand-written one and LangGraph's ReAct agent) over a scripted chat model that binds
 * the tools, all over the fixture server.
 */
import test, { type ExecutionContext } from "ava";
import { BaseChatModel, type BindToolsInput } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, ToolMessage, type BaseMessage } from "@langchain/core/messages";
import type { ChatResult } from "@langchain/core/outputs";
import { StructuredTool, ToolInputParsingException } from "@langchain/core/tools";
import { convertToOpenAITool } from "@langchain/core/utils/function_calling";
import { createReactAgent } from "@langchain/langgraph/prebuilt";
import { langchainTools, McpToolError, toLangchainOutput } from "../src/adapters/langchain.js";
import { createPool, McpPool, McpPoolError, type PoolConfigInput } from "../src/index.js";
import { readEvents, stdioServer, tmpFile, waitFor } from "./helpers/fixtures.js";

// ---------------------------------------------------------------- helpers

async function pool(t: ExecutionContext, config: PoolConfigInput): Promise<McpPool> {
  const p = await createPool(config);
  t.teardown(() => p.close());
  return p;
}

/** One pool for the tests that neither change its catalog nor count its calls. */
let sharedPool: Promise<McpPool> | undefined;
function shared(): Promise<McpPool> {
  sharedPool ??= createPool({ servers: { fixture: { ...stdioServer(), stderr: "ignore" } } });
  return sharedPool;
}
test.after.always(async () => {
  await (await sharedPool?.catch(() => undefined))?.close();
});

async function tool(p: McpPool, name: string): Promise<StructuredTool> {
  const [found] = await langchainTools(p, { include: [name] });
  if (!found) throw new Error(`no tool ${name}`);
  return found;
}

const call = (name: string, args: Record<string, unknown>, id = "call-1") => ({ type: "tool_call" as const, id, name, args });

/**
 * A chat model that answers from a script (messages so far → next message), and records the tool definitions
 * it was bound to, as a provider would send them (OpenAI format).
 */
class ScriptedChatModel extends BaseChatModel {
  readonly script: (messages: BaseMessage[]) => AIMessage;
  readonly bound: ReturnType<typeof convertToOpenAITool>[];
  readonly seen: BaseMessage[][];

  constructor(script: (messages: BaseMessage[]) => AIMessage, bound: ReturnType<typeof convertToOpenAITool>[] = [], seen: BaseMessage[][] = []) {
    super({});
    this.script = script;
    this.bound = bound;
    this.seen = seen;
  }

  _llmType(): string {
    return "scripted";
  }

  override bindTools(tools: BindToolsInput[]): ScriptedChatModel {
    return new ScriptedChatModel(this.script, tools.map((x) => convertToOpenAITool(x)), this.seen);
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.seen.push(messages);
    const message = this.script(messages);
    return { generations: [{ text: typeof message.content === "string" ? message.content : "", message }] };
  }
}

/** Calls `toolName` once, then answers with what the last tool message said. */
function toolThenAnswer(toolName: string, args: Record<string, unknown>): ScriptedChatModel {
  return new ScriptedChatModel((messages) => {
    const last = messages.at(-1);
    if (last instanceof ToolMessage) return new AIMessage(`${last.status}: ${typeof last.content === "string" ? last.content : JSON.stringify(last.content)}`);
    return new AIMessage({ content: "", tool_calls: [call(toolName, args)] });
  });
}

// ---------------------------------------------------------------- the tools

test("langchainTools gives every pool tool as a StructuredTool with its pool name, description and JSON Schema", async (t) => {
  const p = await shared();
  const tools = await langchainTools(p);
  t.deepEqual(tools.map((x) => x.name), (await p.listTools()).map((x) => x.name));
  const echo = tools.find((x) => x.name === "fixture__echo")!;
  t.true(echo instanceof StructuredTool);
  t.is(echo.description, "Returns its message.");
  t.is(echo.responseFormat, "content_and_artifact");
  t.deepEqual(echo.metadata, { server: "fixture", tool: "echo", annotations: { readOnlyHint: true } });
  t.deepEqual(convertToOpenAITool(echo), {
    type: "function",
    function: { name: "fixture__echo", description: "Returns its message.", parameters: { type: "object", properties: { message: { type: "string" } }, required: ["message"] } },
  });
});

test("invoke with arguments gives the text; with a tool call, a ToolMessage", async (t) => {
  const p = await shared();
  const echo = await tool(p, "fixture__echo");
  t.is(await echo.invoke({ message: "bare" }), "bare");
  const message = await echo.invoke(call("fixture__echo", { message: "called" }, "id-7"));
  t.true(message instanceof ToolMessage);
  t.like(message, { content: "called", tool_call_id: "id-7", name: "fixture__echo", status: "success" });
  t.deepEqual((message as ToolMessage).artifact, []);
});

test("every kind of content block is mapped as @langchain/mcp-adapters maps it", async (t) => {
  const p = await shared();
  const message = (await (await tool(p, "fixture__rich")).invoke(call("fixture__rich", {}))) as ToolMessage;
  t.deepEqual(JSON.parse(JSON.stringify(message.content)), [
    { type: "text", text: "plain" },
    { type: "text", text: "annotated" },
    { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
    { type: "audio", source_type: "base64", data: "UklGRg==", mime_type: "audio/wav" },
    { type: "file", source_type: "url", url: "file:///tmp/x.txt", mime_type: "text/plain" },
  ]);
  t.deepEqual(message.artifact, [
    { type: "resource", resource: { uri: "file:///tmp/y.txt", mimeType: "text/plain", text: "embedded" } },
    { type: "resource", resource: { uri: "file:///tmp/z.bin", blob: "AAEC" } },
    { type: "mcp_structured_content", data: { answer: 42, list: [1, "two", { three: 3 }] } },
    { type: "mcp_meta", data: { "example.com/trace": "abc" } },
  ]);
});

test("one text block with structured content becomes that block with structuredContent, as in mcp-adapters", (t) => {
  t.deepEqual(toLangchainOutput({ content: [{ type: "text", text: '{"n":1}' }], structuredContent: { n: 1 } }), [
    { type: "text", text: '{"n":1}', structuredContent: { n: 1 } },
    [{ type: "mcp_structured_content", data: { n: 1 } }],
  ]);
  t.deepEqual(toLangchainOutput({ content: [] }), [[], []]);
});

// ---------------------------------------------------------------- errors

test("a tool result with isError is an error ToolMessage for a tool call, and McpToolError for bare arguments", async (t) => {
  const p = await shared();
  const fail = await tool(p, "fixture__fail");
  const message = await fail.invoke(call("fixture__fail", { message: "no such user" }, "id-9"));
  t.true(message instanceof ToolMessage);
  t.like(message, { content: "no such user", status: "error", tool_call_id: "id-9", name: "fixture__fail" });
  const error = await t.throwsAsync(fail.invoke({ message: "bare failure" }));
  t.true(error instanceof McpToolError);
  t.like(error, { server: "fixture", tool: "fail", result: { content: [{ type: "text", text: "bare failure" }], isError: true } });
  t.regex(error!.message, /bare failure/);
});

test("a pool error is thrown as the McpPoolError", async (t) => {
  const p = await shared();
  const error = await t.throwsAsync((await tool(p, "fixture__rpc_error")).invoke(call("fixture__rpc_error", { code: -32001 })));
  t.true(error instanceof McpPoolError, `expected McpPoolError, got ${String(error)}`);
  t.like(error, { server: "fixture", tool: "rpc_error", mcpCode: -32001 });
});

// Serial (ava runs these before the others): it reads the shared pool's call count.
test.serial("input that does not match the tool's schema is refused by LangChain before any call", async (t) => {
  const p = await shared();
  const before = p.stats().calls.total;
  await t.throwsAsync((await tool(p, "fixture__echo")).invoke({ message: 7 } as never), { instanceOf: ToolInputParsingException });
  t.is(p.stats().calls.total, before);
});

// ---------------------------------------------------------------- abort

test("LangChain's signal cancels the call on the server and rejects with ABORTED", async (t) => {
  const events = tmpFile("langchain-abort");
  const p = await pool(t, { servers: { fixture: { ...stdioServer([], { FIXTURE_EVENTS: events }), stderr: "ignore" } } });
  const slow = await tool(p, "fixture__slow");
  const controller = new AbortController();
  const running = slow.invoke(call("fixture__slow", { ms: 60_000 }), { signal: controller.signal });
  await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "slow"), 10_000);
  controller.abort();
  const error = await t.throwsAsync(running);
  t.true(error instanceof McpPoolError, `expected McpPoolError, got ${String(error)}`);
  t.is((error as McpPoolError).code, "ABORTED");
  await waitFor(() => readEvents(events).some((e) => e.event === "cancelled" && e.tool === "slow"), 5_000);
});

// ---------------------------------------------------------------- sessions

test("with sessionId, calls go to that session's own connection of a session-scoped server", async (t) => {
  const p = await pool(t, { servers: { user: { ...stdioServer(), scope: "session", stderr: "ignore" } } });
  const [a] = await langchainTools(p, { sessionId: "alice", include: ["user__increment"] });
  const [b] = await langchainTools(p, { sessionId: "bob", include: ["user__increment"] });
  t.is(await a!.invoke({}), "1");
  t.is(await a!.invoke({}), "2");
  t.is(await b!.invoke({}), "1", "bob's counter lives on bob's own server process");
  t.is(await a!.invoke({}), "3");
  const sessions = p.stats().servers.user!.connections.map((c) => c.sessionId).filter((s) => s !== undefined);
  t.deepEqual(sessions.sort(), ["alice", "bob"]);
});

test("bad options reject with INVALID_ARGUMENTS", async (t) => {
  const p = await shared();
  for (const options of [{ include: "fixture__echo" }, { sessionId: "" }, { session: "a" }]) {
    const error = await t.throwsAsync(langchainTools(p, options as never));
    t.is((error as McpPoolError).code, "INVALID_ARGUMENTS", JSON.stringify(options));
  }
});

// ---------------------------------------------------------------- agent loops

test("an agent loop binds the tools to a chat model, runs its tool calls through the pool and answers", async (t) => {
  const p = await shared();
  const tools = await langchainTools(p, { include: ["fixture__echo", "fixture__fail"] });
  const model = toolThenAnswer("fixture__echo", { message: "from the agent" }).bindTools(tools);
  t.deepEqual(model.bound.map((x) => x.function.name), ["fixture__echo", "fixture__fail"]);
  t.deepEqual(model.bound[0]!.function.parameters, { type: "object", properties: { message: { type: "string" } }, required: ["message"] });

  const byName = new Map(tools.map((x) => [x.name, x]));
  const messages: BaseMessage[] = [new HumanMessage("echo something")];
  for (let turn = 0; turn < 5; turn++) {
    const reply = (await model.invoke(messages)) as AIMessage;
    messages.push(reply);
    if (!reply.tool_calls?.length) break;
    for (const toolCall of reply.tool_calls) messages.push((await byName.get(toolCall.name)!.invoke(toolCall)) as ToolMessage);
  }
  t.is(messages.at(-1)!.content, "success: from the agent");
  t.is(messages.length, 4);
});

test("LangGraph's ReAct agent runs the pool's tools, a failing one included", async (t) => {
  const p = await shared();
  const tools = await langchainTools(p, { include: ["fixture__echo", "fixture__fail"] });
  // Calls echo, then fail, then answers with the statuses it saw.
  const model = new ScriptedChatModel((messages) => {
    const results = messages.filter((m): m is ToolMessage => m instanceof ToolMessage);
    if (results.length === 0) return new AIMessage({ content: "", tool_calls: [call("fixture__echo", { message: "one" }, "c1")] });
    if (results.length === 1) return new AIMessage({ content: "", tool_calls: [call("fixture__fail", { message: "two went wrong" }, "c2")] });
    return new AIMessage(results.map((m) => `${m.status}:${String(m.content)}`).join(" | "));
  });
  const agent = createReactAgent({ llm: model, tools });
  const state = await agent.invoke({ messages: [new HumanMessage("go")] }, { signal: AbortSignal.timeout(20_000) });
  t.is(state.messages.at(-1)!.content, "success:one | error:two went wrong");
});

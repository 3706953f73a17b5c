/**
 * `mcp-worker-pool/ai-sdk` with the real AI SDK: `generateText` driven by the SDK's own mock language model
 * (`ai/test`) calls pool tools over the fixture server, then answers from what it got back. Result conversion,
 * tool-level and pool-level errors, abort, per-session routing, filters, bad options, a catalog change.
 */
import test, { type ExecutionContext } from "ava";
import { asSchema, generateText, stepCountIs, type ToolSet } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { aiSdkTools, toModelOutput } from "../src/adapters/ai-sdk.js";
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

type Prompt = MockLanguageModelV4["doGenerateCalls"][number]["prompt"];
type Content = Awaited<ReturnType<MockLanguageModelV4["doGenerate"]>>["content"];

const USAGE = {
  inputTokens: { total: 10, noCache: 10, cacheRead: undefined, cacheWrite: undefined },
  outputTokens: { total: 5, text: 5, reasoning: undefined },
};

/**
 * A model that asks for one tool call, then (once it has the tool's result) answers with `answer(output)`,
 * where `output` is what the SDK sent it as that tool's result.
 */
function toolThenAnswer(toolName: string, input: unknown, answer: (output: unknown) => string): MockLanguageModelV4 {
  return new MockLanguageModelV4({
    doGenerate: async ({ prompt }) => {
      const result = lastToolResult(prompt);
      const content: Content =
        result === undefined
          ? [{ type: "tool-call", toolCallId: "call-1", toolName, input: JSON.stringify(input) }]
          : [{ type: "text", text: answer(result) }];
      return { content, finishReason: { unified: result === undefined ? "tool-calls" : "stop", raw: undefined }, usage: USAGE, warnings: [] };
    },
  });
}

function lastToolResult(prompt: Prompt): unknown {
  for (const message of [...prompt].reverse()) {
    if (message.role !== "tool") continue;
    for (const part of message.content) if (part.type === "tool-result") return part.output;
  }
  return undefined;
}

/** Runs one tool call through generateText (bounded), returning the result and what the model got back. */
async function runOnce(tools: ToolSet, toolName: string, input: unknown, abortSignal = AbortSignal.timeout(20_000)) {
  const model = toolThenAnswer(toolName, input, (output) => JSON.stringify(output));
  const result = await generateText({ model, tools, prompt: "use the tool", stopWhen: stepCountIs(3), abortSignal });
  return { result, model, modelSaw: lastToolResult(model.doGenerateCalls[1]!.prompt) };
}

function text(result: CallToolResult): string {
  const first = result.content[0];
  if (first?.type !== "text") throw new Error(`expected a text content, got ${JSON.stringify(result.content)}`);
  return first.text;
}

// ---------------------------------------------------------------- the set

test("aiSdkTools gives every pool tool under its pool name, with the server's description and JSON Schema", async (t) => {
  const p = await shared();
  const tools = await aiSdkTools(p);
  const listed = await p.listTools();
  t.deepEqual(Object.keys(tools), listed.map((x) => x.name));
  const echo = tools["fixture__echo"]!;
  t.is(echo.type, "dynamic");
  t.is(echo.description, "Returns its message.");
  t.deepEqual(echo.metadata, { server: "fixture", tool: "echo" });
  t.deepEqual(await asSchema(echo.inputSchema).jsonSchema, {
    type: "object",
    properties: { message: { type: "string" } },
    required: ["message"],
    additionalProperties: false,
  });
});

test("generateText with the mock model calls a pool tool and answers from its result", async (t) => {
  const p = await shared();
  const model = toolThenAnswer("fixture__echo", { message: "hello from the model" }, (output) => {
    const out = output as { type: string; value: Array<{ type: string; text: string }> };
    return `the tool said: ${out.value[0]!.text}`;
  });
  const result = await generateText({ model, tools: await aiSdkTools(p), prompt: "echo something", stopWhen: stepCountIs(3), abortSignal: AbortSignal.timeout(20_000) });

  t.is(result.text, "the tool said: hello from the model");
  t.is(result.steps.length, 2);
  // The model was offered the pool's tools by pool name, with their JSON Schemas.
  const offered = model.doGenerateCalls[0]!.tools!.find((x) => x.name === "fixture__echo");
  t.like(offered, { type: "function", name: "fixture__echo", description: "Returns its message." });
  t.deepEqual((offered as { inputSchema: unknown }).inputSchema, {
    type: "object",
    properties: { message: { type: "string" } },
    required: ["message"],
    additionalProperties: false,
  });
  // The step keeps the CallToolResult as the server sent it; the model got it as content.
  const [toolResult] = result.steps[0]!.toolResults;
  t.like(toolResult, { toolName: "fixture__echo", toolCallId: "call-1", dynamic: true });
  t.deepEqual(toolResult!.output, { content: [{ type: "text", text: "hello from the model" }] });
  t.deepEqual(toolResult!.toolMetadata, { server: "fixture", tool: "echo" });
  t.deepEqual(lastToolResult(model.doGenerateCalls[1]!.prompt), { type: "content", value: [{ type: "text", text: "hello from the model" }] });
});

test("every kind of content block reaches the model as the AI SDK's MCP client converts it", async (t) => {
  const p = await shared();
  const { result, modelSaw } = await runOnce(await aiSdkTools(p), "fixture__rich", {});
  const output = result.steps[0]!.toolResults[0]!.output as CallToolResult;
  t.deepEqual(output.structuredContent, { answer: 42, list: [1, "two", { three: 3 }] });
  const blocks = output.content;
  // JSON: the SDK fills in its optional members (filename, providerOptions) as undefined.
  t.deepEqual(JSON.parse(JSON.stringify(modelSaw)), {
    type: "content",
    value: [
      { type: "text", text: "plain" },
      { type: "text", text: "annotated" },
      { type: "file", mediaType: "image/png", data: { type: "data", data: "iVBORw0KGgo=" } },
      // audio, resource links and embedded resources: their JSON text
      ...blocks.slice(3).map((block) => ({ type: "text", text: JSON.stringify(block) })),
    ],
  });
});

test("a result with structuredContent and no content reaches the model as that JSON", (t) => {
  t.deepEqual(toModelOutput({ content: [], structuredContent: { n: 1 } }), { type: "json", value: { n: 1 } });
  t.deepEqual(toModelOutput({ content: [] }), { type: "content", value: [] });
});

test("a tool result with isError stays the step's result and reaches the model as error-text", async (t) => {
  const p = await shared();
  const { result, modelSaw } = await runOnce(await aiSdkTools(p), "fixture__fail", { message: "no such user" });
  const [toolResult] = result.steps[0]!.toolResults;
  t.deepEqual(toolResult!.output, { content: [{ type: "text", text: "no such user" }], isError: true });
  t.deepEqual(modelSaw, { type: "error-text", value: "no such user" });
});

test("a pool error becomes the AI SDK's tool error, carrying the McpPoolError", async (t) => {
  const p = await shared();
  const { result, modelSaw } = await runOnce(await aiSdkTools(p), "fixture__rpc_error", { code: -32001 });
  const toolError = result.steps[0]!.content.find((part) => part.type === "tool-error");
  t.truthy(toolError, "the step has a tool-error part");
  const error = (toolError as { error: unknown }).error;
  t.true(error instanceof McpPoolError, `expected McpPoolError, got ${String(error)}`);
  t.like(error, { server: "fixture", tool: "rpc_error", mcpCode: -32001 });
  t.like(modelSaw, { type: "error-text" });
  t.regex((modelSaw as { value: string }).value, /rpc_error requested/);
});

test("execute resolves with the CallToolResult as pool.callTool does", async (t) => {
  const p = await shared();
  const tools = await aiSdkTools(p, { include: ["fixture__echo"] });
  const output = await tools["fixture__echo"]!.execute!({ message: "direct" }, { toolCallId: "x", messages: [], context: {} });
  t.deepEqual(output, await p.callTool("fixture__echo", { message: "direct" }));
});

// ---------------------------------------------------------------- abort

test("aborting generateText cancels the pool call on the server", async (t) => {
  const events = tmpFile("ai-sdk-abort");
  const p = await pool(t, { servers: { fixture: { ...stdioServer([], { FIXTURE_EVENTS: events }), stderr: "ignore" } } });
  const controller = new AbortController();
  const model = toolThenAnswer("fixture__slow", { ms: 60_000 }, () => "never");
  const started = Date.now();
  const running = generateText({ model, tools: await aiSdkTools(p), prompt: "wait", stopWhen: stepCountIs(3), abortSignal: controller.signal });
  await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "slow"), 10_000);
  controller.abort();
  // generateText rejects with the abort (the signal's reason), at once, and the model is not asked again.
  const outcome = await Promise.race([
    running.then(
      (r) => ({ settled: "resolved" as const, steps: r.steps }),
      (e: unknown) => ({ settled: "rejected" as const, error: e }),
    ),
    new Promise<{ settled: "hung" }>((resolve) => setTimeout(() => resolve({ settled: "hung" }), 10_000).unref()),
  ]);
  t.is(outcome.settled, "rejected");
  t.is((outcome as { error: Error }).error.name, "AbortError");
  t.true(Date.now() - started < 15_000);
  t.is(model.doGenerateCalls.length, 1, "the model was not asked again");
  await waitFor(() => readEvents(events).some((e) => e.event === "cancelled" && e.tool === "slow"), 5_000);
  t.pass("the server saw the call cancelled");
});

test("execute with an aborted signal rejects with ABORTED", async (t) => {
  const p = await shared();
  const tools = await aiSdkTools(p, { include: ["fixture__slow"] });
  const controller = new AbortController();
  const call = tools["fixture__slow"]!.execute!({ ms: 60_000 }, { toolCallId: "x", messages: [], context: {}, abortSignal: controller.signal });
  setTimeout(() => controller.abort(), 100);
  const error = await t.throwsAsync(Promise.resolve(call));
  t.true(error instanceof McpPoolError);
  t.is((error as McpPoolError).code, "ABORTED");
});

// ---------------------------------------------------------------- sessions

test("with sessionId, calls go to that session's own connection of a session-scoped server", async (t) => {
  const p = await pool(t, { servers: { user: { ...stdioServer(), scope: "session", stderr: "ignore" } } });
  const a = await aiSdkTools(p, { sessionId: "alice", include: ["user__increment"] });
  const b = await aiSdkTools(p, { sessionId: "bob", include: ["user__increment"] });
  const run = async (tools: ToolSet) => text((await runOnce(tools, "user__increment", {})).result.steps[0]!.toolResults[0]!.output as CallToolResult);
  t.is(await run(a), "1");
  t.is(await run(a), "2");
  t.is(await run(b), "1", "bob's counter lives on bob's own server process");
  t.is(await run(a), "3");
  const conns = p.stats().servers.user!.connections.filter((c) => c.sessionId !== undefined);
  t.deepEqual(conns.map((c) => c.sessionId).sort(), ["alice", "bob"]);
  // Without a session, a session-scoped tool is refused as pool.callTool refuses it.
  const none = await aiSdkTools(p, { include: ["user__increment"] });
  const error = await t.throwsAsync(Promise.resolve(none["user__increment"]!.execute!({}, { toolCallId: "x", messages: [], context: {} })));
  t.is((error as McpPoolError).code, "INVALID_ARGUMENTS");
});

// ---------------------------------------------------------------- options

test("include and exclude take pool names or a predicate on the pool entry", async (t) => {
  const p = await shared();
  t.deepEqual(Object.keys(await aiSdkTools(p, { include: ["fixture__echo", "fixture__fail", "nobody__nothing"] })), ["fixture__echo", "fixture__fail"]);
  const readOnly = await aiSdkTools(p, { include: (x) => x.tool.annotations?.readOnlyHint === true, exclude: (x) => x.name.startsWith("fixture__filler_") });
  const expected = (await p.listTools()).filter((x) => x.tool.annotations?.readOnlyHint === true && !x.name.startsWith("fixture__filler_")).map((x) => x.name);
  t.true(expected.length > 3);
  t.deepEqual(Object.keys(readOnly), expected);
  const all = (await p.listTools()).length;
  t.is(Object.keys(await aiSdkTools(p, { exclude: ["fixture__crash", "fixture__hang"] })).length, all - 2);
});

test("bad options reject with INVALID_ARGUMENTS naming the option", async (t) => {
  const p = await shared();
  const cases: Array<[unknown, RegExp]> = [
    [null, /options must be an object/],
    ["fixture", /options must be an object/],
    [{ sessionID: "a" }, /unknown option "sessionID"/],
    [{ sessionId: "" }, /options\.sessionId/],
    [{ sessionId: 7 }, /options\.sessionId/],
    [{ include: "fixture__echo" }, /options\.include must be an array of pool tool names or a function/],
    [{ exclude: [1] }, /options\.exclude\[0\]/],
  ];
  for (const [options, message] of cases) {
    const error = await t.throwsAsync(aiSdkTools(p, options as never), undefined, JSON.stringify(options));
    t.true(error instanceof McpPoolError);
    t.is((error as McpPoolError).code, "INVALID_ARGUMENTS");
    t.regex(error!.message, message);
  }
  const notPool = await t.throwsAsync(aiSdkTools({} as never));
  t.is((notPool as McpPoolError).code, "INVALID_ARGUMENTS");
});

// ---------------------------------------------------------------- catalog changes

test("after tools:changed, the next aiSdkTools has the new tool and an earlier set does not", async (t) => {
  const p = await pool(t, { servers: { fixture: { ...stdioServer(), stderr: "ignore" } } });
  const before = await aiSdkTools(p);
  const changed = new Promise<void>((resolve) => p.once("tools:changed", () => resolve()));
  await p.callTool("fixture__add_tool", { name: "late" });
  await Promise.race([changed, new Promise((_, reject) => setTimeout(() => reject(new Error("no tools:changed within 10 s")), 10_000).unref())]);
  const after = await aiSdkTools(p);
  t.false("fixture__late" in before);
  t.true("fixture__late" in after);
  const { result } = await runOnce(after, "fixture__late", {});
  t.is(text(result.steps[0]!.toolResults[0]!.output as CallToolResult), "late called");
});

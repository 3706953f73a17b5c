/**
 * What a tools/call answer turns into. The pool reads its calls' answers itself (not through the
 * SDK's request path), so these tests hold it to the SDK: the same results, refused where the SDK
 * refuses them, and answers it did not ask for (late, duplicated, malformed) changing nothing else.
 */
import test, { type ExecutionContext } from "ava";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { specTypeSchemas } from "@modelcontextprotocol/client";
import { createPool, McpPool, McpPoolError } from "../src/index.js";
import { checkCallResult } from "../workers/call-result.js";
import { FIXTURE_SERVER, stdioServer } from "./helpers/fixtures.js";

async function openPool(t: ExecutionContext): Promise<McpPool> {
  const pool = await createPool({ servers: { f: stdioServer() } });
  t.teardown(() => pool.close());
  return pool;
}

async function sdkClient(t: ExecutionContext): Promise<Client> {
  const client = new Client({ name: "answers-test", version: "0" });
  t.teardown(() => client.close());
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [FIXTURE_SERVER, "stdio"], stderr: "ignore" }));
  return client;
}

/** The fixture's raw_answer tool: the server answers the call with exactly these members. */
function rawAnswer(pool: McpPool, members: Record<string, unknown>): Promise<unknown> {
  return pool.callTool("f__raw_answer", { answer: JSON.stringify(members) }, { timeoutMs: 10_000 });
}

test("results are exactly what the SDK's own client returns, for every kind of content", async (t) => {
  const [pool, client] = await Promise.all([openPool(t), sdkClient(t)]);
  const calls: Array<[string, Record<string, unknown>]> = [
    ["echo", { message: "héllo ✓" }],
    ["rich", {}],
    ["fail", { message: "tool said no" }],
    ["huge", { bytes: 70_000 }],
  ];
  for (const [tool, args] of calls) {
    const ours = await pool.callTool(`f__${tool}`, args, { timeoutMs: 10_000 });
    const theirs = await client.callTool({ name: tool, arguments: args });
    t.deepEqual(ours, theirs, tool);
  }
});

test("an answer the SDK would accept comes back as the SDK would return it; one it would refuse is PROTOCOL_ERROR; the connection carries on", async (t) => {
  const pool = await openPool(t);
  const results: unknown[] = [
    {},
    { content: [] },
    { content: [{ type: "text", text: "a", extra: "stripped, as zod strips it" }] },
    { content: [{ type: "text", text: "b" }], isError: false, vendorField: { kept: true } },
    { content: [{ type: "image", data: "AAAA", mimeType: "image/png" }], structuredContent: { n: 1 } },
    { content: "not an array" },
    { content: [{ type: "text" }] },
    { content: [{ type: "text", text: "c" }], isError: "yes" },
    { content: [], structuredContent: [1, 2] },
    { content: [{ type: "video", url: "x" }] },
    "a string",
    null,
  ];
  for (const result of results) {
    const expected = specTypeSchemas.CallToolResult["~standard"].validate(result);
    const label = JSON.stringify(result);
    if (expected.issues === undefined) {
      t.deepEqual(await rawAnswer(pool, { result }), expected.value, label);
    } else {
      const error = await t.throwsAsync(rawAnswer(pool, { result }), undefined, label);
      t.true(error instanceof McpPoolError && error.code === "PROTOCOL_ERROR", `${label}: ${String(error)}`);
    }
    // The server's second answer to that call was dropped: the next call gets its own.
    t.deepEqual(await pool.callTool("f__echo", { message: label }), { content: [{ type: "text", text: label }] });
  }
  t.is(pool.stats().servers.f!.connections[0]!.restarts, 0);
});

test("error answers: invalid params name TOOL_NOT_FOUND or INVALID_ARGUMENTS, other codes PROTOCOL_ERROR with mcpCode, malformed ones PROTOCOL_ERROR", async (t) => {
  const pool = await openPool(t);
  const cases: Array<[Record<string, unknown>, McpPoolError["code"], number | undefined]> = [
    [{ error: { code: -32602, message: "Unknown tool: nope" } }, "TOOL_NOT_FOUND", -32602],
    [{ error: { code: -32602, message: "argument x must be a number" } }, "INVALID_ARGUMENTS", -32602],
    [{ error: { code: -32000, message: "server busy", data: { retryAfter: 1 } } }, "PROTOCOL_ERROR", -32000],
    [{ error: { code: "x", message: 1 } }, "PROTOCOL_ERROR", undefined],
    [{ error: null }, "PROTOCOL_ERROR", undefined],
    [{}, "PROTOCOL_ERROR", undefined],
  ];
  for (const [members, code, mcpCode] of cases) {
    const label = JSON.stringify(members);
    const error = await t.throwsAsync(rawAnswer(pool, members), undefined, label);
    t.true(error instanceof McpPoolError, label);
    t.is((error as McpPoolError).code, code, label);
    t.is((error as McpPoolError).mcpCode, mcpCode, label);
  }
  const busy = await t.throwsAsync(rawAnswer(pool, cases[2]![0]));
  t.deepEqual((busy as McpPoolError).data, { retryAfter: 1 });
  t.deepEqual(await pool.callTool("f__echo", { message: "still fine" }), { content: [{ type: "text", text: "still fine" }] });
});

test("calls go out with plain integer ids below 2^31, also used as progress tokens, and a fresh one per call", async (t) => {
  const pool = await openPool(t);
  const seen = new Set<number>();
  for (let i = 0; i < 3; i++) {
    const result = await pool.callTool("f__request_id", {}, { timeoutMs: 10_000, onProgress: () => {} });
    const { id, progressToken } = JSON.parse((result.content[0] as { text: string }).text) as { id: unknown; progressToken: unknown };
    t.true(Number.isInteger(id) && (id as number) >= 0 && (id as number) < 2 ** 31, `id ${JSON.stringify(id)}`);
    t.is(progressToken, id);
    seen.add(id as number);
  }
  t.is(seen.size, 3);
});

test("an answer that echoes our integer id as a string is still matched to its call, as the SDK's client matches it", async (t) => {
  const pool = await openPool(t);
  const answer = { result: { content: [{ type: "text", text: "answered under a string id" }] } };
  for (let i = 0; i < 2; i++) {
    const result = await pool.callTool("f__raw_answer", { answer: JSON.stringify(answer), idAsString: true }, { timeoutMs: 10_000 });
    t.deepEqual(result, answer.result);
  }
  // The connection carries on: the normal second answer to each call was dropped, not misrouted.
  t.like(await pool.callTool("f__echo", { message: "after" }, { timeoutMs: 10_000 }), { content: [{ type: "text", text: "after" }] });
});

test("after a result too large, the next calls reach a fresh connection instead of the one being torn down", async (t) => {
  const pool = await createPool({ servers: { f: stdioServer() }, limits: { maxMessageMb: 0.01 } });
  t.teardown(() => pool.close());
  const error = await t.throwsAsync(pool.callTool("f__huge", { bytes: 100_000 }, { timeoutMs: 10_000 }));
  t.is((error as McpPoolError).code, "RESULT_TOO_LARGE");
  // Not retried tools, sent at once: none may fail with the torn-down link's code.
  const calls = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => pool.callTool("f__huge_unsafe", { bytes: 10 + i }, { timeoutMs: 10_000 })));
  t.deepEqual(calls.map((c) => (c.status === "fulfilled" ? "ok" : (c.reason as McpPoolError).code)), ["ok", "ok", "ok", "ok", "ok"]);
});

test("checkCallResult accepts, refuses and returns exactly what the v2 SDK's CallToolResult schema does", (t) => {
  const text = (s: string) => ({ type: "text", text: s });
  const corpus: unknown[] = [
    { content: [text("a"), text("")] },
    { content: [text("a")], isError: true },
    { content: [text("a")], structuredContent: {} },
    { content: [text("a")], structuredContent: { deep: { er: [1] } }, other: 1 },
    { content: [text("a")], _meta: { progressToken: 1 } },
    { content: [text("a")], _meta: "not an object" },
    { content: [{ ...text("a"), annotations: { priority: 2 } }] },
    { content: [{ ...text("a"), annotations: { priority: 0.2 } }] },
    { content: [{ ...text("a"), _meta: { x: 1 } }] },
    { content: [{ type: "text", text: 5 }] },
    { content: [{ text: "a", type: "text", more: undefined }] },
    { content: [text("a")], isError: null },
    { content: [text("a")], structuredContent: null },
    { content: [null] },
    { content: [[]] },
    { content: {} },
    { isError: true },
    [],
    42,
    undefined,
    Object.assign(Object.create({ inherited: true }) as object, { content: [] }),
  ];
  for (const value of corpus) {
    const label = JSON.stringify(value) ?? String(value);
    const expected = specTypeSchemas.CallToolResult["~standard"].validate(value);
    const actual = checkCallResult(value);
    t.is(actual.ok, expected.issues === undefined, label);
    if (actual.ok === true && expected.issues === undefined) t.deepEqual(actual.value, expected.value, label);
  }
});

test("checkCallResult reads the 2026-07-28 resultType: complete is the answer, without it; input_required asks first", (t) => {
  const complete = checkCallResult({ resultType: "complete", content: [{ type: "text", text: "a" }] }, true);
  t.true(complete.ok === true && !("resultType" in complete.value));
  t.deepEqual(complete.ok === true && complete.value, { content: [{ type: "text", text: "a" }] });
  t.deepEqual(checkCallResult({ resultType: "input_required", inputRequests: { a: { method: "roots/list" } } }, true), { ok: "input_required", asks: true });
  t.deepEqual(checkCallResult({ resultType: "input_required", requestState: "s1" }, true), { ok: "input_required", asks: false });
  t.is(checkCallResult({ resultType: "input_required", inputRequests: {} }, true).ok, false);
  const unknown = checkCallResult({ resultType: "maybe", content: [] }, true);
  t.true(unknown.ok === false && /unknown resultType "maybe"/.test(unknown.message));
  // The legacy era has no such member: it passes through like any other.
  t.deepEqual(checkCallResult({ resultType: "input_required", content: [] }), { ok: true, value: { resultType: "input_required", content: [] } });
});

/**
 * The pool against a published MCP server, not one of ours: `@modelcontextprotocol/server-everything`
 * (the reference server, v1 SDK, legacy era) over stdio, with the default `protocol: "auto"`: its
 * `server/discover` probe is refused and the handshake follows; tools are listed, called, with progress;
 * resources, templates, prompts and completion are listed, read, got and completed, and a subscription is
 * told of updates.
 */
import test from "ava";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Progress } from "@modelcontextprotocol/client";
import { McpPoolError } from "../src/index.js";
import { waitFor, within } from "./helpers/fixtures.js";
import { testPool } from "./helpers/pools.js";

const require = createRequire(import.meta.url);
const EVERYTHING = join(dirname(require.resolve("@modelcontextprotocol/server-everything/package.json")), "dist", "index.js");
const everything = { command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" as const };

test("server-everything over stdio: probed, then spoken to in the legacy era; tools listed and called, with progress", async (t) => {
  const pool = await testPool(t, { servers: { e: everything } });
  t.is(pool.stats().servers.e!.state, "ready");
  t.is(pool.stats().servers.e!.protocolVersion, "2025-11-25");
  t.like(pool.serverInfo("e"), { serverInfo: { name: "mcp-servers/everything" } });
  const names = (await pool.listTools()).map((tool) => tool.name);
  t.true(names.includes("e__echo") && names.includes("e__get-sum"), names.join(", "));
  t.deepEqual((await pool.callTool("e__echo", { message: "hi" }, { timeoutMs: 10_000 })).content, [{ type: "text", text: "Echo: hi" }]);
  const progress: Progress[] = [];
  const long = await pool.callTool("e__trigger-long-running-operation", { duration: 1, steps: 3 }, { timeoutMs: 20_000, onProgress: (p) => progress.push(p) });
  t.false(long.isError === true);
  t.true(progress.length >= 1, `${progress.length} progress notifications`);
});

test("server-everything over stdio: resources listed and read, templates listed and read through, a prompt with arguments, completion, and a subscription told of updates", async (t) => {
  const pool = await testPool(t, { servers: { e: everything } });
  const within20 = <T>(what: string, promise: Promise<T>) => within(20_000, what, promise);

  // Its docs/ files, one static resource each.
  const resources = await within20("listResources", pool.listResources());
  const architecture = resources.find((r) => r.uri === "demo://resource/static/document/architecture.md");
  t.truthy(architecture, resources.map((r) => r.uri).join(", "));
  t.is(architecture!.server, "e");
  t.is(architecture!.resource.mimeType, "text/markdown");
  const doc = await pool.readResource(architecture!.uri, { timeoutMs: 10_000 });
  t.is(doc.contents.length, 1);
  t.like(doc.contents[0], { uri: architecture!.uri, mimeType: "text/markdown" });
  t.true(((doc.contents[0] as { text?: string }).text ?? "").length > 100);

  const templates = (await within20("listResourceTemplates", pool.listResourceTemplates())).map((r) => r.resourceTemplate.uriTemplate);
  t.true(templates.includes("demo://resource/dynamic/text/{resourceId}") && templates.includes("demo://resource/dynamic/blob/{resourceId}"), templates.join(", "));
  // Not listed: routed by its template.
  const dynamic = await pool.readResource("demo://resource/dynamic/text/3", { timeoutMs: 10_000 });
  t.regex((dynamic.contents[0] as { text: string }).text, /^Resource 3: This is a plaintext resource/);
  const blob = await pool.readResource("demo://resource/dynamic/blob/4", { timeoutMs: 10_000 });
  t.regex(Buffer.from((blob.contents[0] as { blob: string }).blob, "base64").toString("utf8"), /^Resource 4: /);
  const notFound = await t.throwsAsync(pool.readResource("demo://nowhere", { timeoutMs: 10_000 }));
  t.is((notFound as McpPoolError).code, "RESOURCE_NOT_FOUND");

  const prompts = await within20("listPrompts", pool.listPrompts());
  t.deepEqual(
    ["e__simple-prompt", "e__args-prompt", "e__completable-prompt", "e__resource-prompt"].filter((name) => !prompts.some((p) => p.name === name)),
    [],
  );
  const args = prompts.find((p) => p.name === "e__args-prompt")!;
  t.is(args.prompt.name, "args-prompt");
  t.deepEqual(args.prompt.arguments?.map((a) => [a.name, a.required === true]), [["city", true], ["state", false]]);
  const weather = await pool.getPrompt("e__args-prompt", { city: "Paris", state: "Île-de-France" }, { timeoutMs: 10_000 });
  t.deepEqual(weather.messages, [{ role: "user", content: { type: "text", text: "What's weather in Paris, Île-de-France?" } }]);

  const department = await within20("complete", pool.complete({ ref: { type: "ref/prompt", name: "e__completable-prompt" }, argument: { name: "department", value: "S" } }));
  t.deepEqual(department.values, ["Sales", "Support"]);
  // The second argument's values depend on the first, given as context.
  const lead = await within20("complete", pool.complete({ ref: { type: "ref/prompt", name: "e__completable-prompt" }, argument: { name: "name", value: "" }, context: { arguments: { department: "Sales" } } }));
  t.deepEqual(lead.values, ["David", "Eve", "Frank"]);
  const id = await within20("complete", pool.complete({ ref: { type: "ref/resource", uri: "demo://resource/dynamic/text/{resourceId}" }, argument: { name: "resourceId", value: "7" } }));
  t.deepEqual(id.values, ["7"]);

  // It sends updates for subscribed URIs once its simulation is toggled on (one at once, then every 5 s).
  const updates: Array<{ server?: string; uri?: string }> = [];
  pool.on("resource:updated", (e: { server?: string; uri?: string }) => void updates.push(e));
  await within20("subscribeResource", pool.subscribeResource(architecture!.uri));
  const toggled = await pool.callTool("e__toggle-subscriber-updates", {}, { timeoutMs: 10_000 });
  t.regex((toggled.content as Array<{ text: string }>)[0]!.text, /^Started simulated resource updated notifications/);
  await within20("resource:updated", waitFor(() => updates.length >= 1, 20_000, 10));
  t.deepEqual(updates[0], { server: "e", uri: architecture!.uri });
  await within20("unsubscribeResource", pool.unsubscribeResource(architecture!.uri));
  await pool.callTool("e__toggle-subscriber-updates", {}, { timeoutMs: 10_000 });
});

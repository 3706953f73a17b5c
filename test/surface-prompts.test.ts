/**
 * Prompts and completion through the pool (issue 14, CONTRACT.md "Resources, prompts, completion"):
 * listPrompts (all pages, pool names like tools', the server's own Prompt), getPrompt (the result as
 * sent; PROMPT_NOT_FOUND; the server's errors), prefix / alias / description / include / exclude,
 * prompts/list_changed, deadlines and abort, sessions, and `complete` (a `ref/prompt` by its pool
 * name, a `ref/resource` routed like readResource). Against test/fixtures (catalog.ts says what they
 * serve), over stdio and Streamable HTTP, in both eras. Errors are judged by `code`.
 */
import test from "ava";
import { McpPoolError, type McpPool } from "../src/index.js";
import { ITEMS_TEMPLATE, listedPrompts, MISSING_URI, USERS_TEMPLATE } from "./fixtures/catalog.js";
import { createSession } from "./fixtures/tools.js";
import { assertEra, FIXTURE_ERAS, readEvents, waitFor } from "./helpers/fixtures.js";
import { code, connectionOf, openReadyPool, settle, testSlots } from "./helpers/faults.js";
import { atLeast, bounded, collect, fixture, plain, sessionPool, SURFACE_COMBOS, type SurfaceEvent } from "./helpers/surface.js";

const slot = testSlots(2);

const PROMPTS = listedPrompts(
  createSession({ forget: () => false, toolsChanged: async () => {}, resourcesChanged: async () => {}, promptsChanged: async () => {}, resourceUpdated: async () => {} }),
);

const get = (pool: McpPool, name: string, args?: Record<string, string>, options: Record<string, unknown> = {}) =>
  pool.getPrompt(name, args, { timeoutMs: 10_000, ...options });
/** The text of a GetPromptResult's first message. */
const firstMessage = (result: { messages: Array<{ content: unknown }> }): string => (result.messages[0]?.content as { text?: string } | undefined)?.text ?? "";
const complete = (pool: McpPool, params: Parameters<McpPool["complete"]>[0], options: Parameters<McpPool["complete"]>[1] = {}) =>
  bounded("complete", pool.complete(params, options));

// Over stdio in both eras; over Streamable HTTP in both eras for the core checks and in one era for the
// others (alternating, so both eras' HTTP paths are covered across the file): each HTTP fixture is a process
// more, and the whole suite must stay within its time budget.
for (const { era, transport } of SURFACE_COMBOS) {
  const title = `${era} ${transport}`;

  test(`${title}: listPrompts reads every page and names prompts as tools are named; getPrompt returns the result as sent`, async (t) => {
    const f = await fixture(t, era, transport, ["--page-size", "3"]);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    assertEra(t, pool, era);
    const prompts = await bounded("listPrompts", pool.listPrompts());
    t.deepEqual(prompts.map((p) => p.name), PROMPTS.map((p) => `f__${p.name}`), "11 prompts over 4 pages of 3");
    t.deepEqual(plain(prompts.map((p) => p.prompt)), PROMPTS, "the server's own Prompt, original name intact");
    t.true(prompts.every((p) => p.server === "f"));

    const greet = await get(pool, "f__greet", { name: "Ada" });
    t.deepEqual(greet.messages, [{ role: "user", content: { type: "text", text: "Hello, Ada!" } }]);
    t.is(greet.description, "A greeting.");
    t.is(firstMessage(await get(pool, "f__summarize", { text: "long text" })), "Summarize (brief): long text");
    t.is(firstMessage(await get(pool, "f__summarize", { text: "t", style: "bullets" })), "Summarize (bullets): t");
    t.is(firstMessage(await get(pool, "f__prompt_filler_7")), "filler prompt 7", "a prompt from the last page");
    t.deepEqual(
      readEvents(f.events).filter((e) => e.event === "prompt").map((e) => e.prompt),
      ["greet", "summarize", "summarize", "prompt_filler_7"],
      "sent under the server's own names",
    );
  });

  if (transport === "stdio" || era === "modern") test(`${title}: an unknown prompt is PROMPT_NOT_FOUND without asking the server; the server's own errors keep their JSON-RPC code`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    t.is(await code(get(pool, "f__nope")), "PROMPT_NOT_FOUND");
    t.is(await code(get(pool, "greet")), "PROMPT_NOT_FOUND", "the server's name is not a pool name");
    t.is(await code(get(pool, "f__echo")), "PROMPT_NOT_FOUND", "a tool is not a prompt");
    t.is(readEvents(f.events).filter((e) => e.event === "prompt").length, 0);

    const missingArg = await t.throwsAsync(get(pool, "f__greet", {}));
    t.true(missingArg instanceof McpPoolError && missingArg.code === "INVALID_ARGUMENTS", String(missingArg));
    const broken = await t.throwsAsync(get(pool, "f__broken"));
    t.true(broken instanceof McpPoolError, String(broken));
    t.is((broken as McpPoolError).mcpCode, -32603, "the server's JSON-RPC error code");
    t.is((broken as McpPoolError).server, "f");
    t.is(firstMessage(await get(pool, "f__greet", { name: "again" })), "Hello, again!", "the connection serves on");
    t.is(connectionOf(pool, "f").restarts, 0);
  });

  if (transport === "stdio" || era === "legacy") test(`${title}: prompts/list_changed rebuilds the prompt catalog: prompts:changed with a newer version, and the new prompt is listed and got`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const changes = collect<SurfaceEvent>(pool, "prompts:changed");
    t.is(await code(get(pool, "f__dynamic")), "PROMPT_NOT_FOUND");
    await pool.callTool("f__add_prompt", { name: "dynamic" }, { timeoutMs: 10_000 });
    await atLeast(changes, 1, "prompts:changed");
    t.like(changes[0], { server: "f" });
    t.is(typeof changes[0]!.version, "number");
    const prompts = await bounded("listPrompts", pool.listPrompts());
    t.deepEqual(prompts.map((p) => p.name), [...PROMPTS.map((p) => `f__${p.name}`), "f__dynamic"]);
    t.is(firstMessage(await get(pool, "f__dynamic")), "added prompt dynamic");

    await pool.callTool("f__add_prompt", { name: "dynamic2" }, { timeoutMs: 10_000 });
    await atLeast(changes, 2, "second prompts:changed");
    t.true(changes[1]!.version! > changes[0]!.version!);
    t.is((await bounded("listPrompts", pool.listPrompts())).at(-1)?.name, "f__dynamic2");
  });

  if (transport === "stdio" || era === "modern") test(`${title}: complete suggests a prompt's argument by the prompt's pool name and a template's variable routed like readResource`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    t.deepEqual(await complete(pool, { ref: { type: "ref/prompt", name: "f__greet" }, argument: { name: "name", value: "al" } }), {
      values: ["alice", "albert", "alfred"],
      total: 3,
      hasMore: false,
    });
    t.deepEqual(
      (await complete(pool, { ref: { type: "ref/prompt", name: "f__summarize" }, argument: { name: "style", value: "b" }, context: { arguments: { text: "x" } } })).values,
      ["brief", "bullets"],
    );
    t.deepEqual((await complete(pool, { ref: { type: "ref/prompt", name: "f__greet" }, argument: { name: "name", value: "zz" } })).values, []);
    // A template's own URI, routed to the server that lists the template; and with `server` given.
    t.deepEqual((await complete(pool, { ref: { type: "ref/resource", uri: ITEMS_TEMPLATE }, argument: { name: "id", value: "12" } })).values, ["12", "123"]);
    t.deepEqual((await complete(pool, { ref: { type: "ref/resource", uri: USERS_TEMPLATE }, argument: { name: "name", value: "car" } }, { server: "f" })).values, ["carol", "carlos"]);

    t.is(await code(complete(pool, { ref: { type: "ref/prompt", name: "f__nope" }, argument: { name: "x", value: "" } })), "PROMPT_NOT_FOUND");
    t.is(await code(complete(pool, { ref: { type: "ref/prompt", name: "greet" }, argument: { name: "name", value: "" } })), "PROMPT_NOT_FOUND", "by pool name only");
    t.is(await code(complete(pool, { ref: { type: "ref/resource", uri: MISSING_URI }, argument: { name: "x", value: "" } })), "RESOURCE_NOT_FOUND");
  });
}

for (const era of FIXTURE_ERAS) {
  test(`${era}: prompts follow the naming rules of tools: prefix, bare names, alias and description overrides, include and exclude`, async (t) => {
    const p = await fixture(t, era, "stdio", [], {
      prefix: "pre",
      prompts: { include: ["greet", "summarize"], overrides: { greet: { alias: "hello", description: "Says hello." } } },
    });
    const bare = await fixture(t, era, "stdio", [], { prefix: "", prompts: { exclude: ["broken", "greet"] } });
    const pool = await openReadyPool(t, { servers: { p: p.config, bare: bare.config } }, slot);
    const prompts = await bounded("listPrompts", pool.listPrompts());
    const ofP = prompts.filter((x) => x.server === "p");
    t.deepEqual(ofP.map((x) => x.name), ["hello", "pre__summarize"]);
    t.is(ofP[0]!.prompt.name, "greet", "the server's own name stays");
    t.is(ofP[0]!.prompt.description, "Says hello.");
    t.is(ofP[1]!.prompt.description, PROMPTS[1]!.description);
    t.deepEqual(
      prompts.filter((x) => x.server === "bare").map((x) => x.name),
      PROMPTS.map((x) => x.name).filter((n) => n !== "broken" && n !== "greet"),
    );

    t.is(firstMessage(await get(pool, "hello", { name: "Ada" })), "Hello, Ada!");
    t.is(await code(get(pool, "pre__greet", { name: "Ada" })), "PROMPT_NOT_FOUND", "an aliased prompt is known by its alias only");
    t.is(firstMessage(await get(pool, "summarize", { text: "t" })), "Summarize (brief): t", "bare's, with prefix \"\"");
    t.is(await code(get(pool, "pre__broken")), "PROMPT_NOT_FOUND", "not included");
    t.is(await code(get(pool, "broken")), "PROMPT_NOT_FOUND", "excluded");
    t.is(readEvents(bare.events).filter((e) => e.event === "prompt").length, 1);
    t.deepEqual((await complete(pool, { ref: { type: "ref/prompt", name: "hello" }, argument: { name: "name", value: "d" } })).values, ["dave"]);
  });

  test(`${era}: getPrompt on a hung server ends with TIMEOUT at its deadline, and with ABORTED when aborted`, async (t) => {
    const f = await fixture(t, era, "stdio", [], { retry: "never" });
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    t.is(firstMessage(await get(pool, "f__greet", { name: "first" })), "Hello, first!");
    // `hang` busy-loops the server: nothing it is sent is answered from then on.
    const hang = settle(pool.callTool("f__hang", {}, { timeoutMs: 50_000 }));
    await bounded("hang reaches the server", waitFor(() => readEvents(f.events).some((e) => e.event === "call" && e.tool === "hang"), 20_000, 10));
    const started = Date.now();
    t.is(await code(get(pool, "f__greet", { name: "late" }, { timeoutMs: 300 })), "TIMEOUT");
    t.true(Date.now() - started < 5_000, "settled at its deadline");
    const controller = new AbortController();
    const aborted = code(get(pool, "f__greet", { name: "late" }, { timeoutMs: 50_000, signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    t.is(await bounded("aborted getPrompt", aborted), "ABORTED");
    await pool.close();
    t.is((await bounded("hang", hang)).ok, false);
  });

  test(`${era}: sessions get, list and complete a session-scoped server's prompts on their own connections`, async (t) => {
    const f = await fixture(t, era, "stdio", [], { scope: "session" });
    const pool = await sessionPool(t, { servers: { s: f.config } }, slot);
    const alice = pool.session("alice");
    const bob = pool.session("bob");
    t.teardown(() => Promise.all([alice.close(), bob.close()]));
    const changes = collect<SurfaceEvent>(pool, "prompts:changed");
    await alice.callTool("s__add_prompt", { name: "mine" }, { timeoutMs: 10_000 });
    await bounded("alice lists it", waitFor(async () => (await alice.listPrompts()).some((p) => p.name === "s__mine"), 20_000, 50));
    t.like(changes.find((e) => e.sessionId === "alice"), { server: "s", sessionId: "alice" }, "prompts:changed names the session");
    t.is(firstMessage(await alice.getPrompt("s__mine", undefined, { timeoutMs: 10_000 })), "added prompt mine");
    t.is(firstMessage(await pool.getPrompt("s__mine", undefined, { sessionId: "alice", timeoutMs: 10_000 })), "added prompt mine");
    t.false((await bounded("bob.listPrompts", bob.listPrompts())).some((p) => p.name === "s__mine"), "another session's prompts never appear");
    t.is(await code(bob.getPrompt("s__mine", undefined, { timeoutMs: 10_000 })), "PROMPT_NOT_FOUND");
    t.is(firstMessage(await bob.getPrompt("s__greet", { name: "Bob" }, { timeoutMs: 10_000 })), "Hello, Bob!");
    t.deepEqual((await bounded("bob.complete", bob.complete({ ref: { type: "ref/prompt", name: "s__greet" }, argument: { name: "name", value: "b" } }))).values, ["bob"]);
    t.deepEqual(
      (await bounded("complete with sessionId", pool.complete({ ref: { type: "ref/prompt", name: "s__summarize" }, argument: { name: "style", value: "d" } }, { sessionId: "alice" }))).values,
      ["detailed"],
    );
  });
}

/**
 * The tool catalog: pure naming rules (prefix, filters, overrides, collisions), then against real
 * fixture servers: pagination, unique names across servers, and list_changed. Pagination and
 * list_changed run once per protocol era (issue 13); list_changed over stdio and Streamable HTTP, since
 * 2026-07-28 sends it only on a subscriptions/listen stream.
 */
import test, { type ExecutionContext } from "ava";
import type { Tool } from "@modelcontextprotocol/client";
import { buildCatalog } from "../src/catalog.js";
import { createPool, parseConfig, type PoolEvent, type PoolTool } from "../src/index.js";
import { assertEra, FIXTURE_ERAS, FIXTURE_TOOL_COUNT, startHttpFixture, stdioServer, waitFor, type FixtureEra } from "./helpers/fixtures.js";

/** Tools the fixture server lists by default: 17 named tools and 12 fillers. */

const tool = (name: string, description = `${name} tool`): Tool => ({ name, description, inputSchema: { type: "object" } });

function servers(input: Record<string, unknown>) {
  return Object.values(parseConfig({ servers: input }).servers);
}

const names = (entries: PoolTool[]) => entries.map((e) => e.name);

// ---------------------------------------------------------------- pure

test("buildCatalog names tools <server>__<tool> and keeps the server's Tool intact", (t) => {
  const echo = tool("echo");
  const catalog = buildCatalog(servers({ a: { command: "x" } }), new Map([["a", [echo, tool("slow")]]]));
  t.deepEqual(names(catalog), ["a__echo", "a__slow"]);
  t.is(catalog[0]!.server, "a");
  t.is(catalog[0]!.tool, echo);
});

test("buildCatalog uses a configured prefix instead of the server name", (t) => {
  const catalog = buildCatalog(servers({ a: { command: "x", prefix: "fs" } }), new Map([["a", [tool("read")]]]));
  t.deepEqual(names(catalog), ["fs__read"]);
  t.is(catalog[0]!.server, "a");
});

test('buildCatalog exposes bare tool names with prefix ""', (t) => {
  const catalog = buildCatalog(servers({ a: { command: "x", prefix: "" } }), new Map([["a", [tool("echo"), tool("slow")]]]));
  t.deepEqual(names(catalog), ["echo", "slow"]);
});

test("buildCatalog exposes only included tools and hides excluded ones", (t) => {
  const list = [tool("echo"), tool("slow"), tool("crash"), tool("hang")];
  const catalog = buildCatalog(
    servers({
      inc: { command: "x", tools: { include: ["echo", "slow", "missing"] } },
      exc: { command: "x", tools: { exclude: ["crash", "hang"] } },
      both: { command: "x", tools: { include: ["echo", "slow"], exclude: ["slow"] } },
    }),
    new Map([["inc", list], ["exc", list], ["both", list]]),
  );
  t.deepEqual(names(catalog), ["inc__echo", "inc__slow", "exc__echo", "exc__slow", "both__echo"]);
});

test("buildCatalog applies override aliases and descriptions without renaming the server's tool", (t) => {
  const catalog = buildCatalog(
    servers({
      a: { command: "x", tools: { overrides: { echo: { alias: "say", description: "Says it." }, slow: { description: "Takes time." } } } },
    }),
    new Map([["a", [tool("echo", "Returns its message."), tool("slow", "Waits.")]]]),
  );
  t.deepEqual(names(catalog), ["say", "a__slow"]);
  t.is(catalog[0]!.tool.name, "echo");
  t.is(catalog[0]!.tool.description, "Says it.");
  t.is(catalog[1]!.tool.name, "slow");
  t.is(catalog[1]!.tool.description, "Takes time.");
});

test("buildCatalog resolves collisions deterministically: the earlier server keeps the name", (t) => {
  const cfg = servers({ a: { command: "x", prefix: "" }, b: { command: "x", prefix: "" } });
  const tools = new Map([["a", [tool("echo"), tool("slow")]], ["b", [tool("echo"), tool("other")]]]);
  const first = buildCatalog(cfg, tools);
  const second = buildCatalog(cfg, tools);
  t.deepEqual(names(first), names(second));
  t.deepEqual(
    first.map((e) => [e.name, e.server, e.tool.name]),
    [["echo", "a", "echo"], ["slow", "a", "slow"], ["b__echo", "b", "echo"], ["other", "b", "other"]],
  );
});

test("buildCatalog keeps names unique even when the fallback name is taken too", (t) => {
  const cfg = servers({
    a: { command: "x", prefix: "" },
    b: { command: "x", prefix: "" },
    c: { command: "x", tools: { overrides: { echo: { alias: "echo" } } } },
  });
  // a takes "echo" and (as a bare name) "b__echo"; b's echo falls back past both.
  const tools = new Map([["a", [tool("echo"), tool("b__echo")]], ["b", [tool("echo")]], ["c", [tool("echo")]]]);
  const catalog = buildCatalog(cfg, tools);
  const all = names(catalog);
  t.is(new Set(all).size, all.length);
  // As README documents: <server>__<tool>, then <server>__<tool>_2, ...
  t.deepEqual(all, ["echo", "b__echo", "b__echo_2", "c__echo"]);
  t.deepEqual(catalog.map((e) => e.server), ["a", "a", "b", "c"]);
  t.deepEqual(names(buildCatalog(cfg, tools)), all);
});

test("buildCatalog resolves two aliases that collide", (t) => {
  const cfg = servers({
    a: { command: "x", tools: { overrides: { one: { alias: "run" } } } },
    b: { command: "x", tools: { overrides: { two: { alias: "run" } } } },
  });
  const catalog = buildCatalog(cfg, new Map([["a", [tool("one")]], ["b", [tool("two")]]]));
  t.deepEqual(names(catalog), ["run", "b__two"]);
});

// ---------------------------------------------------------------- real servers

for (const era of FIXTURE_ERAS) {
  test(`${era}: listTools reads every page of tools/list`, async (t) => {
    const pool = await createPool({ servers: { fixture: stdioServer(["--page-size", "8"], undefined, era) } });
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    const tools = (await pool.listTools()).filter((e) => e.server === "fixture");
    t.is(tools.length, FIXTURE_TOOL_COUNT);
    t.is(new Set(tools.map((e) => e.tool.name)).size, FIXTURE_TOOL_COUNT);
    t.true(tools.some((e) => e.name === "fixture__filler_11"));
    const echo = tools.find((e) => e.name === "fixture__echo");
    t.is(echo?.tool.name, "echo");
    t.deepEqual(echo?.tool.annotations, { readOnlyHint: true });
    t.is(pool.stats().servers.fixture!.tools, FIXTURE_TOOL_COUNT);
  });
}

test('two servers with the same tools and prefix "" get unique pool names', async (t) => {
  const pool = await createPool({
    servers: { a: { ...stdioServer(), prefix: "" }, b: { ...stdioServer(), prefix: "" } },
  });
  t.teardown(() => pool.close());
  const tools = await pool.listTools();
  t.is(tools.length, 2 * FIXTURE_TOOL_COUNT);
  t.is(new Set(tools.map((e) => e.name)).size, tools.length);
  t.is(tools.filter((e) => e.server === "a").length, FIXTURE_TOOL_COUNT);
  t.is(tools.filter((e) => e.server === "b").length, FIXTURE_TOOL_COUNT);
  // Each name routes to its own server.
  const pidTools = tools.filter((e) => e.tool.name === "pid");
  t.is(pidTools.length, 2);
  const [pidA, pidB] = await Promise.all(pidTools.map((e) => pool.callTool(e.name, {})));
  const texts = [pidA, pidB].map((r) => (r!.content[0] as { text: string }).text);
  t.not(texts[0], texts[1]);
});

/** The fixture of `era` over `kind`, as a server config; an HTTP fixture is stopped at teardown. */
async function fixtureOver(t: ExecutionContext, kind: "stdio" | "http", era: FixtureEra) {
  if (kind === "stdio") return stdioServer([], undefined, era);
  const http = await startHttpFixture("http", [], undefined, era);
  t.teardown(() => http.close());
  return { url: http.url };
}

for (const era of FIXTURE_ERAS) {
  for (const kind of ["stdio", "http"] as const) {
    test(`${era}: a tool added on the server over ${kind} appears in the catalog, fires tools:changed and is callable`, async (t) => {
      const pool = await createPool({ servers: { fixture: await fixtureOver(t, kind, era) } });
      t.teardown(() => pool.close());
      assertEra(t, pool, era);
      const changes: PoolEvent[] = [];
      pool.on("tools:changed", (event: PoolEvent) => changes.push(event));
      t.false((await pool.listTools()).some((e) => e.name === "fixture__dynamic"));

      const added = await pool.callTool("fixture__add_tool", { name: "dynamic" });
      t.falsy(added.isError);
      await waitFor(() => changes.length > 0, 10_000);
      t.is(changes[0]!.server, "fixture");

      const tools = await pool.listTools();
      t.is(tools.length, FIXTURE_TOOL_COUNT + 1);
      const dynamic = tools.find((e) => e.name === "fixture__dynamic");
      t.is(dynamic?.tool.name, "dynamic");
      const result = await pool.callTool("fixture__dynamic", {});
      t.deepEqual(result.content, [{ type: "text", text: "dynamic called" }]);
    });
  }
}

/**
 * The tool catalog against real fixture servers: pagination, unique names across servers, and
 * list_changed (the pure naming rules are in catalogs.test.ts). Pagination and
 * list_changed run once per protocol era (issue 13); list_changed over stdio and Streamable HTTP, since
 * 2026-07-28 sends it only on a subscriptions/listen stream.
 */
import test, { type ExecutionContext } from "ava";
import { createPool, type PoolEvent } from "../src/index.js";
import { assertEra, FIXTURE_ERAS, FIXTURE_TOOL_COUNT, startHttpFixture, stdioServer, waitFor, type FixtureEra } from "./helpers/fixtures.js";

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

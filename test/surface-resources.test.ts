/**
 * Resources and resource templates through the pool (issue 14, CONTRACT.md "Resources, prompts,
 * completion"): listResources / listResourceTemplates (all pages, the server's own objects),
 * readResource (the result as sent; routing: `server` given, exact URI before template, config order;
 * RESOURCE_NOT_FOUND), include/exclude, list_changed, deadlines and abort, the catalogs after a kill -9
 * of the server and after a worker crash, a read retried after a crash, and a session-scoped server's
 * resources through `pool.session(id)`. Against test/fixtures (catalog.ts says what they serve), over
 * stdio and Streamable HTTP, in both eras. Errors are judged by `code`.
 */
import test from "ava";
import { McpPoolError, type McpPool } from "../src/index.js";
import {
  BLOB_BASE64,
  BLOB_URI,
  COUNTER_URI,
  HELLO_TEXT,
  HELLO_URI,
  ITEMS_TEMPLATE,
  LISTED_TEMPLATES,
  listedPrompts,
  listedResources,
  MISSING_URI,
  SLOW_TEMPLATE,
  USERS_TEMPLATE,
} from "./fixtures/catalog.js";
import { createSession } from "./fixtures/tools.js";
import { assertEra, FIXTURE_ERAS, readEvents, waitFor } from "./helpers/fixtures.js";
import { code, connectionOf, openReadyPool, settle, testSlots } from "./helpers/faults.js";
import { atLeast, bounded, collect, firstText, fixture, killServer, plain, sessionPool, SURFACE_COMBOS, type SurfaceEvent } from "./helpers/surface.js";

const slot = testSlots(2);

/** What a fixture session with nothing added lists. */
const fresh = () =>
  createSession({ forget: () => false, toolsChanged: async () => {}, resourcesChanged: async () => {}, promptsChanged: async () => {}, resourceUpdated: async () => {} });
const RESOURCES = listedResources(fresh());
const PROMPTS = listedPrompts(fresh());

/** Small worker heaps and no message-size limit in the way: `huge_unsafe` then kills its worker (see faults-worker). */
const CRASH_LIMITS = { workerHeapMb: 32, maxMessageMb: 1024 };
const HUGE_BYTES = 64_000_000;

const read = (pool: McpPool, uri: string, options: Record<string, unknown> = {}) => pool.readResource(uri, { timeoutMs: 10_000, ...options });
const text = async (pool: McpPool, uri: string, options: Record<string, unknown> = {}) => firstText(await read(pool, uri, options));

/** The pool's three catalogs for one server, as plain JSON. */
async function catalogsOf(pool: McpPool, server: string) {
  const resources = (await bounded("listResources", pool.listResources())).filter((r) => r.server === server);
  const templates = (await bounded("listResourceTemplates", pool.listResourceTemplates())).filter((r) => r.server === server);
  const prompts = (await bounded("listPrompts", pool.listPrompts())).filter((p) => p.server === server);
  return plain({ resources: resources.map((r) => r.resource), templates: templates.map((r) => r.resourceTemplate), prompts: prompts.map((p) => p.prompt) });
}

// Over stdio in both eras; over Streamable HTTP in both eras for the core checks and in one era for the
// others (alternating, so both eras' HTTP paths are covered across the file): each HTTP fixture is a process
// more, and the whole suite must stay within its time budget.
for (const { era, transport } of SURFACE_COMBOS) {
  const title = `${era} ${transport}`;

  test(`${title}: listResources and listResourceTemplates read every page and give each entry its server and the server's own object`, async (t) => {
    const f = await fixture(t, era, transport, ["--page-size", "3"]);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    assertEra(t, pool, era);
    const resources = await bounded("listResources", pool.listResources());
    t.is(resources.length, RESOURCES.length, "13 resources over 5 pages of 3");
    t.deepEqual(plain(resources.map((r) => r.resource)), RESOURCES);
    for (const r of resources) {
      t.is(r.server, "f");
      t.is(r.uri, r.resource.uri, "resources keep their URI: it is what readResource routes by");
    }
    const templates = await bounded("listResourceTemplates", pool.listResourceTemplates());
    t.deepEqual(plain(templates.map((r) => r.resourceTemplate)), LISTED_TEMPLATES, "3 templates over 1 full page and 1 more");
    t.true(templates.every((r) => r.server === "f"));
  });

  test(`${title}: readResource returns text, blob and template reads as sent; an unlisted URI and the server's own not-found are RESOURCE_NOT_FOUND`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    t.deepEqual((await read(pool, HELLO_URI)).contents, [{ uri: HELLO_URI, mimeType: "text/plain", text: HELLO_TEXT }]);
    t.deepEqual((await read(pool, BLOB_URI)).contents, [{ uri: BLOB_URI, mimeType: "application/octet-stream", blob: BLOB_BASE64 }]);
    t.deepEqual((await read(pool, COUNTER_URI)).contents, [{ uri: COUNTER_URI, mimeType: "text/plain", text: "0" }]);
    const item = ITEMS_TEMPLATE.replace("{id}", "x-99");
    t.deepEqual((await read(pool, item)).contents, [{ uri: item, mimeType: "text/plain", text: "x-99" }], "not listed: routed by its template");
    const profile = USERS_TEMPLATE.replace("{name}", "bob");
    t.deepEqual(JSON.parse(await text(pool, profile)), { name: "bob" });

    // Nobody lists it and no template matches: the pool refuses it without asking a server.
    t.is(await code(read(pool, MISSING_URI)), "RESOURCE_NOT_FOUND");
    t.is(await code(read(pool, "https://example.com/elsewhere")), "RESOURCE_NOT_FOUND");
    t.false(readEvents(f.events).some((e) => e.event === "read" && e.uri === MISSING_URI), "not sent to the server");
    // Sent to the server named: its own not-found (-32002 in the legacy fixture; the v2 SDK's
    // resource-not-found, -32602 with data.uri, in the modern one, as the 2026-07-28 spec has it).
    const own = await t.throwsAsync(read(pool, MISSING_URI, { server: "f" }));
    t.true(own instanceof McpPoolError && own.code === "RESOURCE_NOT_FOUND", String(own));
    t.true(readEvents(f.events).some((e) => e.event === "read" && e.uri === MISSING_URI), "asked the server");
    t.is(await text(pool, HELLO_URI), HELLO_TEXT, "the connection serves on");
    t.is(connectionOf(pool, "f").restarts, 0);
  });

  if (transport === "stdio" || era === "legacy") test(`${title}: resources/list_changed rebuilds the catalog: resources:changed with a newer version, then the new resource is listed and read`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const changes = collect<SurfaceEvent>(pool, "resources:changed");
    const before = await bounded("listResources", pool.listResources());
    const uri = "fixture://dynamic/added.txt";
    t.is(await code(read(pool, uri)), "RESOURCE_NOT_FOUND");
    await pool.callTool("f__add_resource", { uri }, { timeoutMs: 10_000 });
    await atLeast(changes, 1, "resources:changed");
    t.is(changes[0]!.server, "f");
    t.is(typeof changes[0]!.version, "number");
    const after = await bounded("listResources", pool.listResources());
    t.deepEqual(after.map((r) => r.uri), [...before.map((r) => r.uri), uri]);
    t.deepEqual((await read(pool, uri)).contents, [{ uri, mimeType: "text/plain", text: `added resource ${uri}` }]);

    await pool.callTool("f__add_resource", { uri: `${uri}.2` }, { timeoutMs: 10_000 });
    await atLeast(changes, 2, "second resources:changed");
    t.true(changes[1]!.version! > changes[0]!.version!, "versions grow");
    t.is((await bounded("listResources", pool.listResources())).at(-1)?.uri, `${uri}.2`);
  });

  if (transport === "stdio" || era === "modern") test(`${title}: a read past its deadline is TIMEOUT, an aborted one ABORTED, each cancelled on the server, and the next read is served`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const slow = SLOW_TEMPLATE.replace("{ms}", "30000");
    const started = Date.now();
    t.is(await code(read(pool, slow, { timeoutMs: 300 })), "TIMEOUT");
    t.true(Date.now() - started < 5_000, "settled at its deadline");
    const cancelled = () => readEvents(f.events).filter((e) => e.event === "cancelled" && e.tool === "read:slow").length;
    await bounded("the timed-out read is cancelled on the server", waitFor(() => cancelled() === 1, 20_000, 10));

    const controller = new AbortController();
    const aborted = code(read(pool, SLOW_TEMPLATE.replace("{ms}", "30001"), { timeoutMs: 60_000, signal: controller.signal }));
    await bounded("read reaches the server", waitFor(() => readEvents(f.events).some((e) => e.event === "read" && e.uri.endsWith("/30001")), 20_000, 10));
    controller.abort();
    t.is(await bounded("aborted read", aborted), "ABORTED");
    await bounded("the aborted read is cancelled on the server", waitFor(() => cancelled() === 2, 20_000, 10));

    const already = new AbortController();
    already.abort();
    t.is(await code(read(pool, HELLO_URI, { signal: already.signal })), "ABORTED", "an already aborted signal");
    t.is(await text(pool, SLOW_TEMPLATE.replace("{ms}", "10")), "read after 10ms");
  });

  if (transport === "stdio" || era === "modern") test(`${title}: the catalogs come back after a kill -9 of the server, rebuilt from the new process's lists`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const initial = await catalogsOf(pool, "f");
    t.deepEqual(initial.resources, RESOURCES);
    t.deepEqual(initial.templates, LISTED_TEMPLATES);
    t.deepEqual(initial.prompts, PROMPTS);
    // Something the killed process lists and its successor does not: the rebuild must drop it.
    const resourceChanges = collect<SurfaceEvent>(pool, "resources:changed");
    const promptChanges = collect<SurfaceEvent>(pool, "prompts:changed");
    await pool.callTool("f__add_resource", { uri: "fixture://dynamic/gone.txt" }, { timeoutMs: 10_000 });
    await pool.callTool("f__add_prompt", { name: "gone" }, { timeoutMs: 10_000 });
    await atLeast(resourceChanges, 1, "resources:changed");
    await atLeast(promptChanges, 1, "prompts:changed");

    await killServer(t, pool, "f", f);
    await atLeast(resourceChanges, 2, "resources:changed after the kill");
    await atLeast(promptChanges, 2, "prompts:changed after the kill");
    t.deepEqual(await catalogsOf(pool, "f"), initial);
    t.is(await text(pool, HELLO_URI), HELLO_TEXT);
    t.is(await code(read(pool, "fixture://dynamic/gone.txt")), "RESOURCE_NOT_FOUND");
  });
}

for (const era of FIXTURE_ERAS) {
  test(`${era}: readResource goes to the server given, else to the first configured server listing the exact URI, else to the first whose template matches`, async (t) => {
    const z = await fixture(t, era, "stdio");
    const a = await fixture(t, era, "stdio");
    // Config order z, a: not alphabetical, so the order seen is the config's.
    const pool = await openReadyPool(t, { servers: { z: z.config, a: a.config } }, slot);
    await pool.callTool("z__bump_resource", {}, { timeoutMs: 10_000 });
    await pool.callTool("z__bump_resource", {}, { timeoutMs: 10_000 });
    await pool.callTool("a__bump_resource", {}, { timeoutMs: 10_000 });
    t.is(await text(pool, COUNTER_URI), "2", "both list it: the first configured (z) serves it");
    t.is(await text(pool, COUNTER_URI, { server: "a" }), "1");
    t.is(await text(pool, COUNTER_URI, { server: "z" }), "2");

    // a lists a URI that z's items template matches: the exact listing wins over z's earlier template.
    const changes = collect<SurfaceEvent>(pool, "resources:changed");
    const listed = ITEMS_TEMPLATE.replace("{id}", "listed");
    await pool.callTool("a__add_resource", { uri: listed }, { timeoutMs: 10_000 });
    await atLeast(changes, 1, "resources:changed");
    t.is(await text(pool, listed), `added resource ${listed}`);
    t.is(await text(pool, listed, { server: "z" }), "listed", "z reads it by its template when asked by name");

    // Listed by nobody: the first configured server whose template matches.
    const byTemplate = ITEMS_TEMPLATE.replace("{id}", "77");
    t.is(await text(pool, byTemplate), "77");
    const readsOf = (events: string) => readEvents(events).filter((e) => e.event === "read" && e.uri === byTemplate).length;
    t.is(readsOf(z.events), 1);
    t.is(readsOf(a.events), 0);
    t.deepEqual(readEvents(z.events).filter((e) => e.event === "read" && e.uri === listed).length, 1, "only the read that named z");
  });

  test(`${era}: resources include and exclude filter the listed resources and templates (by uri or uriTemplate), and what they hide is not routed to`, async (t) => {
    const inc = await fixture(t, era, "stdio", [], { resources: { include: [HELLO_URI, ITEMS_TEMPLATE] } });
    const exc = await fixture(t, era, "stdio", [], { resources: { exclude: [COUNTER_URI, SLOW_TEMPLATE] }, prefix: "p" });
    const pool = await openReadyPool(t, { servers: { inc: inc.config, exc: exc.config } }, slot);
    const resources = await bounded("listResources", pool.listResources());
    t.deepEqual(resources.filter((r) => r.server === "inc").map((r) => r.uri), [HELLO_URI]);
    t.deepEqual(resources.filter((r) => r.server === "exc").map((r) => r.uri), RESOURCES.map((r) => r.uri).filter((u) => u !== COUNTER_URI));
    t.true(resources.every((r) => r.uri === r.resource.uri), "a prefix does not rename resources");
    const templates = await bounded("listResourceTemplates", pool.listResourceTemplates());
    t.deepEqual(templates.filter((r) => r.server === "inc").map((r) => r.resourceTemplate.uriTemplate), [ITEMS_TEMPLATE]);
    t.deepEqual(templates.filter((r) => r.server === "exc").map((r) => r.resourceTemplate.uriTemplate), [ITEMS_TEMPLATE, USERS_TEMPLATE]);

    // Hidden everywhere: nobody lists the counter, no listed template matches a slow URI.
    t.is(await code(read(pool, COUNTER_URI)), "RESOURCE_NOT_FOUND");
    t.is(await code(read(pool, SLOW_TEMPLATE.replace("{ms}", "1"))), "RESOURCE_NOT_FOUND");
    // Listed by exc only: routed there although inc comes first.
    t.deepEqual((await read(pool, BLOB_URI)).contents, [{ uri: BLOB_URI, mimeType: "application/octet-stream", blob: BLOB_BASE64 }]);
    t.is(readEvents(exc.events).filter((e) => e.event === "read" && e.uri === BLOB_URI).length, 1);
    t.is(readEvents(inc.events).filter((e) => e.event === "read" && e.uri === BLOB_URI).length, 0);
    // The users template is exc's alone.
    t.deepEqual(JSON.parse(await text(pool, USERS_TEMPLATE.replace("{name}", "eve"))), { name: "eve" });
    t.is(readEvents(inc.events).filter((e) => e.event === "read").length, 0);
  });

  // A worker's death is the pool's side, whatever the era (faults-worker covers both for tools): once, 2026-07-28.
  if (era === "modern") test(`${era}: the catalogs come back after a worker crash, and resources:changed fires for the replacement's lists`, async (t) => {
    const f = await fixture(t, era, "stdio", [], { retry: "never" });
    const pool = await openReadyPool(t, { servers: { f: f.config }, limits: CRASH_LIMITS }, slot);
    const initial = await catalogsOf(pool, "f");
    const changes = collect<SurfaceEvent>(pool, "resources:changed");
    await pool.callTool("f__add_resource", { uri: "fixture://dynamic/lost.txt" }, { timeoutMs: 10_000 });
    await atLeast(changes, 1, "resources:changed");
    const thread = connectionOf(pool, "f").threadId;
    const crashes = collect(pool, "worker:crash");
    t.deepEqual(await settle(pool.callTool("f__huge_unsafe", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 })), { ok: false, code: "CONNECTION_LOST" });
    t.is(crashes.length, 1);
    await waitFor(() => {
      const c = connectionOf(pool, "f");
      return c.state === "ready" && c.threadId !== thread && c.pid !== undefined;
    }, 30_000);
    await atLeast(changes, 2, "resources:changed after the replacement");
    t.deepEqual(await catalogsOf(pool, "f"), initial);
    t.is(await text(pool, HELLO_URI), HELLO_TEXT);
  });

  test(`${era}: a read in flight when its server is killed -9 is retried on the reopened server and succeeds`, async (t) => {
    const f = await fixture(t, era, "stdio");
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const uri = SLOW_TEMPLATE.replace("{ms}", "1500");
    const pid = connectionOf(pool, "f").pid!;
    const outcome = read(pool, uri, { timeoutMs: 50_000 }).then(firstText, (error: unknown) => `failed: ${(error as McpPoolError).code}`);
    await bounded("read reaches the server", waitFor(() => readEvents(f.events).some((e) => e.event === "read" && e.uri === uri), 20_000, 10));
    process.kill(pid, "SIGKILL");
    t.is(await bounded("retried read", outcome), "read after 1500ms");
    const reads = readEvents(f.events).filter((e) => e.event === "read" && e.uri === uri);
    t.is(reads.length, 2, "once on the killed server, once on its successor");
    t.not(reads[0].pid, reads[1].pid);
  });

  // The pool's side of a worker's death is the same whatever the server's era: once, in the legacy era.
  if (era === "legacy") test(`${era}: a read in flight when its worker crashes is retried on the replacement and succeeds; the unannotated call that killed the worker is not`, async (t) => {
    const f = await fixture(t, era, "stdio");
    const pool = await openReadyPool(t, { servers: { f: f.config }, limits: CRASH_LIMITS }, slot);
    // Long enough to be still in flight when the worker dies: the server writes 64 MB first, slowly on a busy machine.
    const uri = SLOW_TEMPLATE.replace("{ms}", "8000");
    const outcome = read(pool, uri, { timeoutMs: 50_000 }).then(firstText, (error: unknown) => `failed: ${(error as McpPoolError).code}`);
    await bounded("read reaches the server", waitFor(() => readEvents(f.events).some((e) => e.event === "read" && e.uri === uri), 20_000, 10));
    t.deepEqual(await settle(pool.callTool("f__huge_unsafe", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 })), { ok: false, code: "CONNECTION_LOST" });
    t.is(await bounded("retried read", outcome), "read after 8000ms");
    const reads = readEvents(f.events).filter((e) => e.event === "read" && e.uri === uri);
    t.is(reads.length, 2, "once on the dead worker's server, once on the replacement's");
    t.not(reads[0].pid, reads[1].pid);
    t.is(readEvents(f.events).filter((e) => e.event === "call" && e.tool === "huge_unsafe").length, 1);
    t.is(pool.stats().crashes.worker, 1);
  });

  test(`${era}: sessions read a session-scoped server's resources on their own connections, and see their own resource lists`, async (t) => {
    const f = await fixture(t, era, "stdio", [], { scope: "session" });
    const pool = await sessionPool(t, { servers: { s: f.config } }, slot);
    const alice = pool.session("alice");
    const bob = pool.session("bob");
    t.teardown(() => Promise.all([alice.close(), bob.close()]));
    const changes = collect<SurfaceEvent>(pool, "resources:changed");
    await alice.callTool("s__bump_resource", {}, { timeoutMs: 10_000 });
    t.is(firstText(await alice.readResource(COUNTER_URI, { timeoutMs: 10_000 })), "1");
    t.is(firstText(await bob.readResource(COUNTER_URI, { timeoutMs: 10_000 })), "0", "bob's own server process");
    t.is(firstText(await pool.readResource(COUNTER_URI, { sessionId: "alice", timeoutMs: 10_000 })), "1", "sessionId is the same as pool.session(id)");

    const uri = "fixture://dynamic/alice.txt";
    await alice.callTool("s__add_resource", { uri }, { timeoutMs: 10_000 });
    await bounded("alice lists it", waitFor(async () => (await alice.listResources()).some((r) => r.uri === uri && r.server === "s"), 20_000, 50));
    t.like(changes.find((e) => e.sessionId === "alice"), { server: "s", sessionId: "alice" }, "resources:changed names the session");
    t.false((await bounded("bob.listResources", bob.listResources())).some((r) => r.uri === uri), "another session's resources never appear");
    t.deepEqual(plain((await bounded("bob.listResourceTemplates", bob.listResourceTemplates())).map((r) => r.resourceTemplate)), LISTED_TEMPLATES);
    t.is(firstText(await alice.readResource(uri, { timeoutMs: 10_000 })), `added resource ${uri}`);
    t.is(await code(bob.readResource(uri, { timeoutMs: 10_000 })), "RESOURCE_NOT_FOUND");
  });
}

test("legacy http: a session-scoped server's resources are the session's own (one MCP session each)", async (t) => {
  const f = await fixture(t, "legacy", "http", [], { scope: "session" });
  const pool = await sessionPool(t, { servers: { s: f.config } }, slot);
  const alice = pool.session("alice");
  const bob = pool.session("bob");
  t.teardown(() => Promise.all([alice.close(), bob.close()]));
  await alice.callTool("s__bump_resource", {}, { timeoutMs: 10_000 });
  await alice.callTool("s__bump_resource", {}, { timeoutMs: 10_000 });
  t.is(firstText(await alice.readResource(COUNTER_URI, { timeoutMs: 10_000 })), "2");
  t.is(firstText(await bob.readResource(COUNTER_URI, { timeoutMs: 10_000 })), "0");
});

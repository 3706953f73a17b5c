/**
 * Resource subscriptions through the pool (issue 14, CONTRACT.md "Resources, prompts, completion"):
 * subscribeResource / unsubscribeResource and `resource:updated` events `{ server, uri, sessionId? }`;
 * a subscription belongs to the connection that made it and survives its reopen (kill -9 of the server,
 * a forgotten HTTP session) and its replacement (worker crash), the worker subscribing again (legacy
 * era: `resources/subscribe`; 2026-07-28: `subscriptions/listen`); a session's subscriptions end with
 * the session. The fixtures send `notifications/resources/updated` for COUNTER_URI on `bump_resource`,
 * to subscribers only. Over stdio and Streamable HTTP, in both eras.
 */
import test from "ava";
import type { McpPool } from "../src/index.js";
import { COUNTER_URI, HELLO_URI } from "./fixtures/catalog.js";
import { FIXTURE_ERAS, readEvents, waitFor } from "./helpers/fixtures.js";
import { code, connectionOf, openReadyPool, settle, testSlots } from "./helpers/faults.js";
import { atLeast, bounded, collect, fixture, killServer, quietPeriod, sessionPool, SURFACE_COMBOS, type Fixture, type SurfaceEvent } from "./helpers/surface.js";

const slot = testSlots(2);

const CRASH_LIMITS = { workerHeapMb: 32, maxMessageMb: 1024 };
const HUGE_BYTES = 64_000_000;

const bump = async (pool: McpPool, tool = "f__bump_resource", sessionId?: string): Promise<string> => {
  const result = await pool.callTool(tool, {}, { timeoutMs: 10_000, ...(sessionId !== undefined && { sessionId }) });
  return (result.content as Array<{ text: string }>)[0]!.text;
};

/** The legacy fixture's record of `resources/subscribe` for `uri`, per server process. */
const subscribedPids = (f: Fixture, uri: string): number[] =>
  readEvents(f.events).filter((e) => e.event === "subscribe" && e.uri === uri).map((e) => e.pid as number);

/**
 * After a reopen: over stdio the new process is subscribed once the connection is ready, so one bump
 * must be told; over HTTP the restarted server's 2026-07-28 listen stream comes back on the client's
 * own schedule, so bumps are repeated (bounded) until one is told.
 */
async function toldAfterReopen(pool: McpPool, f: Fixture, updates: SurfaceEvent[]): Promise<void> {
  const before = updates.length;
  if (f.transport === "stdio") {
    await bump(pool);
    await atLeast(updates, before + 1, "resource:updated after the reopen");
    return;
  }
  await bounded("resource:updated after the restart", waitFor(async () => {
    if (updates.length > before) return true;
    await bump(pool);
    await new Promise((resolve) => setTimeout(resolve, 300));
    return updates.length > before;
  }, 20_000, 10));
}

for (const { era, transport } of SURFACE_COMBOS) {
  const title = `${era} ${transport}`;

  test(`${title}: a subscriber gets resource:updated for the URI it subscribed to, and nothing once unsubscribed`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const updates = collect<SurfaceEvent>(pool, "resource:updated");
    t.is(await bump(pool), "1");
    await quietPeriod(pool, "f__echo");
    t.is(updates.length, 0, "not subscribed: nobody is told");

    await bounded("subscribeResource", pool.subscribeResource(COUNTER_URI));
    t.is(await bump(pool), "2");
    await atLeast(updates, 1, "resource:updated");
    t.deepEqual(updates[0], { server: "f", uri: COUNTER_URI }, "no sessionId: the pool's own subscription");
    t.is(await bump(pool), "3");
    await atLeast(updates, 2, "second resource:updated");

    await bounded("unsubscribeResource", pool.unsubscribeResource(COUNTER_URI));
    t.is(await bump(pool), "4");
    await quietPeriod(pool, "f__echo");
    t.is(updates.length, 2, "nothing after unsubscribing");
    if (era === "legacy") t.deepEqual(readEvents(f.events).filter((e) => e.event === "subscribe" || e.event === "unsubscribe").map((e) => e.event), ["subscribe", "unsubscribe"]);
  });

  // Over HTTP once (legacy: re-subscribed with the verb); the 2026-07-28 stream's return is covered over stdio and by host-protocol.
  if (transport === "stdio" || era === "legacy") test(`${title}: a subscription survives a kill -9 of the server: the worker subscribes again on the reopened connection`, async (t) => {
    const f = await fixture(t, era, transport);
    const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
    const updates = collect<SurfaceEvent>(pool, "resource:updated");
    await bounded("subscribeResource", pool.subscribeResource(COUNTER_URI, { server: "f" }));
    await bump(pool);
    await atLeast(updates, 1, "resource:updated");

    await killServer(t, pool, "f", f);
    await toldAfterReopen(pool, f, updates);
    t.true(updates.every((u) => u.server === "f" && u.uri === COUNTER_URI && u.sessionId === undefined));
    if (era === "legacy") t.is(new Set(subscribedPids(f, COUNTER_URI)).size, 2, "subscribed on the killed server and on its successor");

    await bounded("unsubscribeResource", pool.unsubscribeResource(COUNTER_URI, { server: "f" }));
    const told = updates.length;
    await bump(pool);
    await quietPeriod(pool, "f__echo");
    t.is(updates.length, told, "the subscription the worker renewed is the one unsubscribed");
  });
}

for (const era of FIXTURE_ERAS) {
  // A worker's death is the pool's side, whatever the era: once, in the legacy era.
  if (era === "legacy") test(`${era}: a subscription survives a worker crash: the replacement worker subscribes again`, async (t) => {
    const f = await fixture(t, era, "stdio", [], { retry: "never" });
    const pool = await openReadyPool(t, { servers: { f: f.config }, limits: CRASH_LIMITS }, slot);
    const updates = collect<SurfaceEvent>(pool, "resource:updated");
    await bounded("subscribeResource", pool.subscribeResource(COUNTER_URI));
    await bump(pool);
    await atLeast(updates, 1, "resource:updated");

    const before = connectionOf(pool, "f");
    t.deepEqual(await settle(pool.callTool("f__huge_unsafe", { bytes: HUGE_BYTES }, { timeoutMs: 55_000 })), { ok: false, code: "CONNECTION_LOST" });
    await waitFor(() => {
      const c = connectionOf(pool, "f");
      return c.state === "ready" && c.threadId !== before.threadId && c.pid !== undefined && c.pid !== before.pid;
    }, 30_000);
    t.is(pool.stats().crashes.worker, 1);
    await toldAfterReopen(pool, f, updates);
    if (era === "legacy") t.is(new Set(subscribedPids(f, COUNTER_URI)).size, 2);
  });

  test(`${era}: a session's subscription on a session-scoped server is told with its sessionId, ends with unsubscribeResource, and ends with session.close()`, async (t) => {
    const f = await fixture(t, era, "stdio", [], { scope: "session" });
    const pool = await sessionPool(t, { servers: { s: f.config } }, slot);
    const updates = collect<SurfaceEvent>(pool, "resource:updated");
    const alice = pool.session("alice");
    t.teardown(() => alice.close());
    await bounded("alice.subscribeResource", alice.subscribeResource(COUNTER_URI));
    await bump(pool, "s__bump_resource", "alice");
    await atLeast(updates, 1, "resource:updated");
    t.deepEqual(updates[0], { server: "s", uri: COUNTER_URI, sessionId: "alice" });
    await bounded("alice.unsubscribeResource", alice.unsubscribeResource(COUNTER_URI));
    await bump(pool, "s__bump_resource", "alice");
    await quietPeriod(pool, "s__echo", { sessionId: "alice" });
    t.is(updates.length, 1, "nothing once unsubscribed");
    await bounded("alice.subscribeResource again", alice.subscribeResource(COUNTER_URI, { server: "s" }));
    t.is(await bump(pool, "s__bump_resource", "alice"), "3");
    await atLeast(updates, 2, "resource:updated after subscribing again");

    await bounded("alice.close", alice.close());
    // The same id again is a new session: it inherits no subscription.
    const again = pool.session("alice");
    t.teardown(() => again.close());
    t.is(await bump(pool, "s__bump_resource", "alice"), "1", "a new connection, a new server process");
    await quietPeriod(pool, "s__echo", { sessionId: "alice" });
    t.is(updates.length, 2);
  });

  test(`${era}: a session's subscription on a shared server ends with session.close(), the pool's own going on`, async (t) => {
    const f = await fixture(t, era, "stdio");
    const other = await fixture(t, era, "stdio");
    const pool = await openReadyPool(t, { servers: { f: f.config, g: other.config } }, slot);
    const updates = collect<SurfaceEvent>(pool, "resource:updated");
    const alice = pool.session("alice");
    t.teardown(() => alice.close());
    await bounded("alice.subscribeResource", alice.subscribeResource(COUNTER_URI, { server: "f" }));
    await bounded("pool.subscribeResource on g", pool.subscribeResource(COUNTER_URI, { server: "g" }));
    await bump(pool, "f__bump_resource");
    await bump(pool, "g__bump_resource");
    await atLeast(updates, 2, "resource:updated from f and g");
    // The event is the connection's: a shared one has no sessionId (the contract leaves it optional).
    t.deepEqual(updates.find((u) => u.server === "f"), { server: "f", uri: COUNTER_URI });
    t.deepEqual(updates.find((u) => u.server === "g"), { server: "g", uri: COUNTER_URI });

    await bounded("alice.close", alice.close());
    await bump(pool, "f__bump_resource");
    await bump(pool, "g__bump_resource");
    await atLeast(updates, 3, "g's resource:updated");
    await quietPeriod(pool, "f__echo");
    t.deepEqual(updates.slice(2), [{ server: "g", uri: COUNTER_URI }], "alice's subscription ended with her session; the pool's did not");
    if (era === "legacy") t.deepEqual(readEvents(f.events).filter((e) => e.event === "unsubscribe").map((e) => e.uri), [COUNTER_URI]);
  });
}

test("legacy http: a subscription survives the server forgetting the MCP session: the reopened session is subscribed again", async (t) => {
  const f = await fixture(t, "legacy", "http");
  const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
  const updates = collect<SurfaceEvent>(pool, "resource:updated");
  await bounded("subscribeResource", pool.subscribeResource(COUNTER_URI));
  t.is(await bump(pool), "1");
  await atLeast(updates, 1, "resource:updated");
  t.deepEqual(await settle(pool.callTool("f__forget_session", {}, { timeoutMs: 10_000 })), { ok: true, text: "session forgotten" });
  // A read is safe to retry: it meets the 404, the connection reopens on a new session, and it is served there.
  t.is(((await pool.readResource(HELLO_URI, { timeoutMs: 20_000 })).contents[0] as { text: string }).text, "Hello from the fixture.");
  await waitFor(() => connectionOf(pool, "f").state === "ready", 20_000);
  t.is(connectionOf(pool, "f").restarts, 1);
  t.is(await bump(pool), "1", "a fresh server-side session");
  await atLeast(updates, 2, "resource:updated on the new session");
  t.is(subscribedPids(f, COUNTER_URI).length, 2, "subscribed on each MCP session");
});

test("subscribeResource to a URI no server lists or matches is RESOURCE_NOT_FOUND", async (t) => {
  const f = await fixture(t, "legacy", "stdio");
  const pool = await openReadyPool(t, { servers: { f: f.config } }, slot);
  t.is(await code(bounded("subscribeResource", pool.subscribeResource("fixture://missing"))), "RESOURCE_NOT_FOUND");
  t.is(readEvents(f.events).filter((e) => e.event === "subscribe").length, 0);
});

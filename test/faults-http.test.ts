/**
 * Fault tolerance over Streamable HTTP (issue 3, item 6): a server that forgets the session gets one
 * fresh initialize however many calls notice, calls lost to it are retried under the safe-retry rule,
 * and a server that is down gets backoff and comes back when restarted on the same port. The last
 * test, a kill with calls in flight, runs once per protocol era; the others run against the legacy
 * fixture only (see the comment on each).
 *
 * A small counting proxy sits in front of the fixture where the test needs to see the server side:
 * it counts `initialize` requests and `tools/call` requests per tool, and the 404s they got.
 */
import test, { type ExecutionContext } from "ava";
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { McpPool, type PoolConfigInput } from "../src/index.js";
import { rmSync } from "node:fs";
import { assertEra, FIXTURE_ERAS, readEvents, startHttpFixture, tmpFile, waitFor, type FixtureEra, type HttpFixture } from "./helpers/fixtures.js";
import { openReadyPool, server, settle } from "./helpers/faults.js";

function openPool(t: ExecutionContext, input: PoolConfigInput): Promise<McpPool> {
  return openReadyPool(t, input);
}

async function fixture(t: ExecutionContext, args: string[] = [], env?: Record<string, string>, era: FixtureEra = "legacy"): Promise<HttpFixture> {
  const f = await startHttpFixture("http", args, env, era);
  t.teardown(() => f.close());
  return f;
}

interface Proxy {
  url: string;
  initializes: number;
  /** server/discover requests: an era probe, or a 2026-07-28 keepalive. */
  discovers: number;
  /** tools/call requests seen, per tool, and how many of them the server answered with 404. */
  calls: Map<string, { sent: number; notFound: number }>;
  /** Requests the upstream refused or dropped (answered 502 here). */
  upstreamErrors: number;
}

/** Forwards every request to `upstream` (an http fixture URL), streaming responses, counting as it goes. */
async function countingProxy(t: ExecutionContext, upstream: string): Promise<Proxy> {
  const target = new URL(upstream);
  const proxy: Proxy = { url: "", initializes: 0, discovers: 0, calls: new Map(), upstreamErrors: 0 };
  const http: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const messages: Array<{ method?: string; params?: { name?: string } }> = [];
      if (req.method === "POST" && body.length > 0) {
        const parsed = JSON.parse(body.toString("utf8")) as unknown;
        messages.push(...(Array.isArray(parsed) ? parsed : [parsed]));
      }
      const tools: string[] = [];
      for (const m of messages) {
        if (m.method === "initialize") proxy.initializes++;
        if (m.method === "server/discover") proxy.discovers++;
        if (m.method === "tools/call" && m.params?.name) tools.push(m.params.name);
      }
      for (const name of tools) {
        const entry = proxy.calls.get(name) ?? { sent: 0, notFound: 0 };
        entry.sent++;
        proxy.calls.set(name, entry);
      }
      const up = request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } },
        (upRes) => {
          if (upRes.statusCode === 404) for (const name of tools) proxy.calls.get(name)!.notFound++;
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        },
      );
      up.on("error", () => {
        proxy.upstreamErrors++;
        if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
        res.end("upstream unavailable");
      });
      res.on("close", () => up.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  );
  proxy.url = `http://127.0.0.1:${(http.address() as AddressInfo).port}${target.pathname}`;
  return proxy;
}

// Legacy-only by nature, like the next two: 2026-07-28 has no sessions, so no 404 and no re-initialize.
test("a server that forgot the session gets one fresh initialize, and the call that met the 404 fails with CONNECTION_LOST when it is not safe to retry", async (t) => {
  const f = await fixture(t);
  const proxy = await countingProxy(t, f.url);
  const pool = await openPool(t, { servers: { h: server({ url: proxy.url }) } });
  t.is(proxy.initializes, 1);

  await pool.callTool("h__increment");
  t.deepEqual(await settle(pool.callTool("h__forget_session")), { ok: true, text: "session forgotten" });
  // `increment` is not annotated: sent on the forgotten session, answered 404, not run again.
  t.deepEqual(await settle(pool.callTool("h__increment")), { ok: false, code: "CONNECTION_LOST" });
  t.deepEqual(proxy.calls.get("increment"), { sent: 2, notFound: 1 });

  // The next call waits for the new session: a fresh server-side session, whose counter starts at 0.
  t.deepEqual(await settle(pool.callTool("h__get_count")), { ok: true, text: "0" });
  t.is(proxy.initializes, 2);
  t.is(pool.stats().servers.h!.connections[0]!.restarts, 1);
});

test("many calls that meet a forgotten session at once cause a single initialize, and read-only ones are retried and succeed", async (t) => {
  const f = await fixture(t);
  const proxy = await countingProxy(t, f.url);
  const pool = await openPool(t, { servers: { h: server({ url: proxy.url }) } });
  await pool.callTool("h__forget_session");

  const outcomes = await Promise.all(
    Array.from({ length: 12 }, (_, i) => settle(pool.callTool("h__echo", { message: `c${i}` }, { timeoutMs: 50_000 }))),
  );
  t.deepEqual(outcomes, Array.from({ length: 12 }, (_, i) => ({ ok: true, text: `c${i}` })));
  const echo = proxy.calls.get("echo")!;
  t.true(echo.notFound >= 1, "at least one call met the 404");
  // A call the host held back (the link had just closed) was sent once, on the new session; one that was
  // sent on the old session (answered 404, or cut off when the link closed) was retried once: never more.
  t.true(echo.sent >= 12 + echo.notFound && echo.sent <= 2 * 12, `${echo.sent} sends, ${echo.notFound} answered 404`);
  t.is(proxy.initializes, 2, "one initialize at start, one for everyone who noticed");
  t.is(pool.stats().servers.h!.connections[0]!.restarts, 1);
});

test("with retry \"never\" a read-only call that meets a forgotten session fails with CONNECTION_LOST", async (t) => {
  const f = await fixture(t);
  const proxy = await countingProxy(t, f.url);
  const pool = await openPool(t, { servers: { h: server({ url: proxy.url, retry: "never" }) } });
  await pool.callTool("h__forget_session");
  t.deepEqual(await settle(pool.callTool("h__echo", { message: "once" })), { ok: false, code: "CONNECTION_LOST" });
  t.deepEqual(proxy.calls.get("echo"), { sent: 1, notFound: 1 });
  t.deepEqual(await settle(pool.callTool("h__echo", { message: "twice" })), { ok: true, text: "twice" });
  t.is(proxy.initializes, 2);
});

// Legacy fixture only: it counts reconnect attempts by their initialize requests, which 2026-07-28 does not send.
test("a killed HTTP server gets bounded reconnect attempts, then probes, and comes back when restarted on the same port", async (t) => {
  const first = await fixture(t);
  const proxy = await countingProxy(t, first.url);
  const reconnect = { maxAttempts: 2, initialDelayMs: 20, maxDelayMs: 50, probeIntervalMs: 1_000 };
  const pool = await openPool(t, {
    servers: { h: server({ url: proxy.url, reconnect, keepalive: { intervalMs: 200, timeoutMs: 5_000, failures: 1 } }) },
  });
  const initializesWhenFailed: number[] = [];
  pool.on("connection:failed", () => initializesWhenFailed.push(proxy.initializes));
  process.kill(first.pid, "SIGKILL");

  // Keepalive notices without any call; then the immediate reopen and maxAttempts more, all refused.
  await waitFor(() => pool.stats().servers.h!.state === "failed", 30_000, 10);
  t.deepEqual(initializesWhenFailed, [1 + 1 + reconnect.maxAttempts]);
  const started = Date.now();
  t.deepEqual(await settle(pool.callTool("h__echo", { message: "down" }, { timeoutMs: 20_000 })), { ok: false, code: "SERVER_UNAVAILABLE" });
  t.true(Date.now() - started < 5_000, "a failed server refuses at once");

  // A probe is one connect attempt: an initialize under the server's known era, or (once the server has
  // been silent for a few attempts in a row, see UNHEARD_BEFORE_PROBE) a server/discover.
  const windowMs = 3_000;
  const attempts = () => proxy.initializes + proxy.discovers;
  const before = attempts();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const probes = attempts() - before;
  t.true(probes >= 1 && probes <= Math.ceil(windowMs / reconnect.probeIntervalMs) + 1, `${probes} probes in ${windowMs} ms`);

  const port = new URL(first.url).port;
  await fixture(t, ["--port", port]);
  await waitFor(() => pool.stats().servers.h!.state === "ready", 30_000);
  t.deepEqual(await settle(pool.callTool("h__echo", { message: "back" })), { ok: true, text: "back" });
});

for (const era of FIXTURE_ERAS) {
  test(`${era}: calls in flight when the HTTP server is killed settle at once, and the server serves again once restarted on its port`, async (t) => {
    const events = tmpFile("faults-http-kill");
    t.teardown(() => rmSync(events, { force: true }));
    const first = await fixture(t, [], { FIXTURE_EVENTS: events }, era);
    const pool = await openPool(t, { servers: { h: server({ url: first.url, retry: "never" }) } });
    assertEra(t, pool, era);
    const inFlight = settle(pool.callTool("h__slow", { ms: 50_000 }, { timeoutMs: 55_000 }));
    await waitFor(() => readEvents(events).some((e) => e.event === "call" && e.tool === "slow"), 20_000, 10);
    const killedAt = Date.now();
    process.kill(first.pid, "SIGKILL");
    t.deepEqual(await inFlight, { ok: false, code: "CONNECTION_LOST" });
    // Keepalive is off: only noticing the answer's stream break off settles it before its deadline.
    t.true(Date.now() - killedAt < 20_000, "settled long before the call's deadline");

    await fixture(t, ["--port", new URL(first.url).port], undefined, era);
    // With a default-sized probe interval this could take long; the test's reconnect policy keeps it short.
    await waitFor(async () => (await settle(pool.callTool("h__echo", { message: "again" }, { timeoutMs: 5_000 }))).ok, 30_000, 200);
    t.is(pool.stats().servers.h!.state, "ready");
    assertEra(t, pool, era);
  });
}

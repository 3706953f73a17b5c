/**
 * Fresh credentials: the pool's `headers(ctx)` and a session's `headers` function are awaited before each
 * connect and reconnect; an HTTP 401 makes the pool ask for headers once more and reconnect once before the
 * request fails. Both eras, against the fixtures over Streamable HTTP with `--token-file` (a bearer token
 * that the test rotates by rewriting the file: the old one is refused with 401 at once, at connect or on
 * any later request).
 */
import test, { type ExecutionContext } from "ava";
import { writeFileSync } from "node:fs";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPoolError, type PoolOptions } from "../src/index.js";
import { assertEra, FIXTURE_ERAS, startHttpFixture, tmpFile, within, type FixtureEra } from "./helpers/fixtures.js";

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

/** A fixture of `era` that wants `Bearer <token>`; `rotate` expires the old token at once; `restart` keeps the port. */
async function tokenServer(t: ExecutionContext, era: FixtureEra, token: string) {
  const file = tmpFile("token");
  writeFileSync(file, token);
  let http = await startHttpFixture("http", ["--token-file", file], undefined, era);
  t.teardown(() => http.close());
  const port = new URL(http.url).port;
  return {
    url: http.url,
    rotate: (next: string) => writeFileSync(file, next),
    stop: () => http.close(),
    start: async () => {
      http = await startHttpFixture("http", ["--token-file", file, "--port", port], undefined, era);
      t.teardown(() => http.close());
    },
  };
}

const failure = (promise: Promise<unknown>): Promise<unknown> => promise.then(() => undefined, (e: unknown) => e);

for (const era of FIXTURE_ERAS) {
  test.serial(`${era}: a token that expires while the connection is open: the requests refused with 401 are sent again after one reconnect with headers asked again, and a call the server took before finishes`, async (t) => {
    const server = await tokenServer(t, era, "t1");
    let current = "t1";
    const asked: Array<{ server: string; sessionId?: string }> = [];
    const options: PoolOptions = {
      headers: async (ctx) => {
        asked.push(ctx);
        return { Authorization: `Bearer ${current}` };
      },
    };
    const pool = await createPool({ servers: { s: { url: server.url, headers: { "x-config": "c" } } } }, options);
    t.teardown(() => pool.close());
    assertEra(t, pool, era);
    t.deepEqual(asked[0], { server: "s" }, "asked before the first connect");
    t.is(text(await pool.callTool("s__echo", { message: "one" })), "one");
    const before = asked.length;

    // Taken by the server under the old token, and not annotated (never sent again after a loss): it
    // finishes on the old link, which is not cut under it.
    let progressed = 0;
    const slow = pool.callTool("s__progress", { steps: 5, intervalMs: 200 }, { timeoutMs: 15_000, onProgress: () => progressed++ });
    await within(10_000, "the slow call started", new Promise<void>((resolve) => {
      const timer = setInterval(() => progressed > 0 && (clearInterval(timer), resolve()), 10);
    }));
    server.rotate("t2");
    current = "t2";
    // Calls that are not annotated either, out together under the expired token: each gets a 401, and each is
    // processed exactly once after the reconnect.
    const calls = [1, 2, 3].map(() => pool.callTool("s__increment", {}, { timeoutMs: 15_000 }));
    const results = await within(20_000, "calls after rotation", Promise.all(calls));
    t.deepEqual(results.map(text).sort(), ["1", "2", "3"]);
    t.is(text(await pool.callTool("s__get_count")), "3");
    t.is(text(await within(20_000, "the slow call", slow)), "progress done");
    t.is(asked.length, before + 1, "asked once more, for the one reconnect");
    const seen = JSON.parse(text(await pool.callTool("s__headers")));
    t.is(seen.authorization, "Bearer t2");
    t.is(seen["x-config"], "c", "the config's headers are kept under the function's");
  });

  test.serial(`${era}: a rotated token survives a restart of the server: the reconnect asks for headers again`, async (t) => {
    const server = await tokenServer(t, era, "t1");
    let current = "t1";
    // Short delays, and enough of them to ride out the restart on a loaded machine.
    const pool = await createPool({ servers: { s: { url: server.url, reconnect: { initialDelayMs: 50, maxDelayMs: 500, maxAttempts: 60 } } } }, {
      headers: () => ({ Authorization: `Bearer ${current}` }),
    });
    t.teardown(() => pool.close());
    t.is(text(await pool.callTool("s__echo", { message: "before" })), "before");
    await server.stop();
    server.rotate("t2");
    current = "t2";
    await server.start();
    t.is(text(await within(20_000, "call after the restart", pool.callTool("s__echo", { message: "after" }, { timeoutMs: 15_000 }))), "after");
    t.is(JSON.parse(text(await pool.callTool("s__headers"))).authorization, "Bearer t2");
  });

  test.serial(`${era}: a 401 that a refresh does not cure fails the call with SERVER_UNAVAILABLE, the 401 in cause, within its bound`, async (t) => {
    const server = await tokenServer(t, era, "t1");
    const pool = await createPool({ servers: { s: { url: server.url, reconnect: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 200 } } } }, {
      headers: () => ({ Authorization: "Bearer t1" }),
    });
    t.teardown(() => pool.close());
    t.is(text(await pool.callTool("s__echo", { message: "ok" })), "ok");
    server.rotate("t2");
    const started = Date.now();
    const error = await within(20_000, "stale token", failure(pool.callTool("s__echo", { message: "no" }, { timeoutMs: 15_000 })));
    t.true(error instanceof McpPoolError);
    t.is((error as McpPoolError).code, "SERVER_UNAVAILABLE");
    t.regex((error as McpPoolError).message, /401/);
    const cause = (error as McpPoolError).cause as { message?: string; status?: number } | undefined;
    t.is(cause?.status, 401, "the 401 is in cause");
    t.regex(String(cause?.message), /401/);
    t.true(Date.now() - started < 10_000, "not at the call's deadline");
  });

  test.serial(`${era}: a headers function that throws fails that connect attempt, its own error in cause`, async (t) => {
    const http = await startHttpFixture("http", [], undefined, era);
    t.teardown(() => http.close());
    const sealed = new Error("vault is sealed");
    const pool = await createPool({ servers: { s: { url: http.url, reconnect: { maxAttempts: 0, initialDelayMs: 50, maxDelayMs: 100 } } } }, {
      headers: () => {
        throw sealed;
      },
    });
    t.teardown(() => pool.close());
    t.not(pool.stats().servers.s!.state, "ready");
    const error = await within(10_000, "call", failure(pool.callTool("s__echo", { message: "x" })));
    t.true(error instanceof McpPoolError);
    t.is((error as McpPoolError).code, "SERVER_UNAVAILABLE");
    t.regex((error as McpPoolError).message, /vault is sealed/);
    t.is((error as McpPoolError).cause, sealed);
  });

  test.serial(`${era}: a session's headers function gives its own connections' headers, over the pool's, asked with its sessionId; another session never gets them`, async (t) => {
    const http = await startHttpFixture("http", [], undefined, era);
    t.teardown(() => http.close());
    const poolAsked: Array<string | undefined> = [];
    const pool = await createPool({ servers: { s: { url: http.url, scope: "session" } }, limits: { acquireTimeoutMs: 30_000 } }, {
      headers: (ctx) => (poolAsked.push(ctx.sessionId), { Authorization: "Bearer pool", "x-pool": "1" }),
    });
    t.teardown(() => pool.close());
    const aliceAsked: Array<string | undefined> = [];
    const alice = pool.session("alice", { headers: (ctx) => (aliceAsked.push(ctx.sessionId), { Authorization: "Bearer alice" }) });
    const bob = pool.session("bob");
    const [a, b] = await within(20_000, "both sessions", Promise.all([alice.callTool("s__headers"), bob.callTool("s__headers")]));
    const aliceSaw = JSON.parse(text(a));
    const bobSaw = JSON.parse(text(b));
    t.is(aliceSaw.authorization, "Bearer alice");
    t.is(aliceSaw["x-pool"], "1");
    t.is(bobSaw.authorization, "Bearer pool", "bob never gets alice's headers");
    t.deepEqual(aliceAsked, ["alice"]);
    t.true(poolAsked.includes("alice") && poolAsked.includes("bob"));
    t.throws(() => pool.session("alice", { headers: () => ({}) }), { instanceOf: McpPoolError });
  });
}

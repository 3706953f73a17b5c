/**
 * Fresh credentials: the pool's `headers(ctx)` and a session's `headers` function are awaited before each
 * connect and reconnect; an HTTP 401 makes the pool ask for headers once more and reconnect once before the
 * request fails. Against the legacy fixture over Streamable HTTP with `--token-file` (a bearer token that
 * the test rotates by rewriting the file: the old one is refused with 401 at once).
 */
import test from "ava";
import { writeFileSync } from "node:fs";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPoolError, type PoolOptions } from "../src/index.js";
import { startHttpFixture, tmpFile, within } from "./helpers/fixtures.js";

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

async function tokenServer(t: import("ava").ExecutionContext, token: string) {
  const file = tmpFile("token");
  writeFileSync(file, token);
  const http = await startHttpFixture("http", ["--token-file", file]);
  t.teardown(() => http.close());
  return { url: http.url, rotate: (next: string) => writeFileSync(file, next) };
}

test.serial("a token that expires: the 401 makes the pool ask for headers again, reconnect once, and the call succeeds", async (t) => {
  const server = await tokenServer(t, "t1");
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
  t.is(pool.stats().servers.s!.state, "ready");
  t.true(asked.length >= 1, "asked before the first connect");
  t.deepEqual(asked[0], { server: "s" });
  t.is(text(await pool.callTool("s__echo", { message: "one" })), "one");
  const before = asked.length;

  server.rotate("t2");
  current = "t2";
  t.is(text(await within(20_000, "call after rotation", pool.callTool("s__echo", { message: "two" }, { timeoutMs: 15_000 }))), "two");
  t.is(asked.length, before + 1, "asked once more, for the one reconnect");
  const seen = JSON.parse(text(await pool.callTool("s__headers")));
  t.is(seen.authorization, "Bearer t2");
  t.is(seen["x-config"], "c", "the config's headers are kept under the function's");
});

test.serial("a 401 that a refresh does not cure fails the call with SERVER_UNAVAILABLE naming the 401, within its bound", async (t) => {
  const server = await tokenServer(t, "t1");
  const pool = await createPool({ servers: { s: { url: server.url, reconnect: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 200 } } } }, {
    headers: () => ({ Authorization: "Bearer t1" }),
  });
  t.teardown(() => pool.close());
  t.is(text(await pool.callTool("s__echo", { message: "ok" })), "ok");
  server.rotate("t2");
  const started = Date.now();
  const error = await within(20_000, "stale token", pool.callTool("s__echo", { message: "no" }, { timeoutMs: 15_000 }).then(() => undefined, (e: unknown) => e));
  t.true(error instanceof McpPoolError);
  t.is((error as McpPoolError).code, "SERVER_UNAVAILABLE");
  t.regex((error as McpPoolError).message, /401/);
  t.regex(String(((error as McpPoolError).cause as Error | undefined)?.message), /401/, "the 401 is in cause");
  t.true(Date.now() - started < 10_000, "not at the call's deadline");
});

test.serial("a headers function that throws fails that connect attempt, its error in the message", async (t) => {
  const http = await startHttpFixture("http");
  t.teardown(() => http.close());
  const pool = await createPool({ servers: { s: { url: http.url, reconnect: { maxAttempts: 0, initialDelayMs: 50, maxDelayMs: 100 } } } }, {
    headers: () => {
      throw new Error("vault is sealed");
    },
  });
  t.teardown(() => pool.close());
  t.not(pool.stats().servers.s!.state, "ready");
  const error = await within(10_000, "call", pool.callTool("s__echo", { message: "x" }).then(() => undefined, (e: unknown) => e));
  t.true(error instanceof McpPoolError);
  t.is((error as McpPoolError).code, "SERVER_UNAVAILABLE");
  t.regex((error as McpPoolError).message, /vault is sealed/);
});

test.serial("a session's headers function gives its own connections' headers, over the pool's, asked with its sessionId", async (t) => {
  const http = await startHttpFixture("http");
  t.teardown(() => http.close());
  const poolAsked: Array<string | undefined> = [];
  const pool = await createPool({ servers: { s: { url: http.url, scope: "session" } }, limits: { acquireTimeoutMs: 30_000 } }, {
    headers: (ctx) => (poolAsked.push(ctx.sessionId), { Authorization: "Bearer pool", "x-pool": "1" }),
  });
  t.teardown(() => pool.close());
  const aliceAsked: Array<string | undefined> = [];
  const alice = pool.session("alice", { headers: (ctx) => (aliceAsked.push(ctx.sessionId), { Authorization: "Bearer alice" }) });
  const bob = pool.session("bob");
  const a = JSON.parse(text(await within(20_000, "alice", alice.callTool("s__headers"))));
  const b = JSON.parse(text(await within(20_000, "bob", bob.callTool("s__headers"))));
  t.is(a.authorization, "Bearer alice");
  t.is(a["x-pool"], "1");
  t.is(b.authorization, "Bearer pool", "bob never gets alice's headers");
  t.deepEqual(aliceAsked, ["alice"]);
  t.true(poolAsked.includes("alice") && poolAsked.includes("bob"));
  t.throws(() => pool.session("alice", { headers: () => ({}) }), { instanceOf: McpPoolError });
});

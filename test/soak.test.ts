/**
 * Soak: a few hundred sessions come and go over a small worker cap. Afterwards nothing is left —
 * no session, no worker, no server process — and memory is back near where it started.
 *
 * Most sessions use a minimal stdio MCP server written below (plain newline-delimited JSON-RPC,
 * no SDK): the fixture server spends ~0.5 s of CPU importing the SDK at every start, so a few
 * hundred of them cannot start within the time budget on a 2-core machine. Every 30th session
 * also uses the real fixture server, session-scoped too, and every 30th from the 15th on the
 * 2026-07-28 fixture (issue 13): both eras in one soak rather than a second soak of its cost.
 */
import test from "ava";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { McpPool, McpPoolError, parseConfig, type PoolEvent } from "../src/index.js";
import { assertEra, isAlive, readEvents, stdioServer, tmpFile, waitFor } from "./helpers/fixtures.js";

const SESSIONS = 300;
/** No new session starts after this long, whatever the machine's load. */
const SOAK_BUDGET_MS = 28_000;
const CONCURRENCY = 10;
const WARM_UP = 10;

/** A real MCP server over stdio, minus the SDK: initialize, ping, tools/list, tools/call. */
const LIGHT_SERVER = `
import { appendFileSync } from "node:fs";
import { createInterface } from "node:readline";
if (process.env.SOAK_PIDS) appendFileSync(process.env.SOAK_PIDS, process.pid + "\\n");
let counter = 0;
const tool = (name, description) => ({ name, description, inputSchema: { type: "object", properties: {} } });
const tools = [tool("increment", "Increments this process's counter."), tool("pid", "Returns the process id.")];
const send = (message) => process.stdout.write(JSON.stringify({ jsonrpc: "2.0", ...message }) + "\\n");
const text = (value) => ({ content: [{ type: "text", text: String(value) }] });
createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "") return;
  const { id, method, params } = JSON.parse(line);
  if (id === undefined) return;
  if (method === "initialize") {
    send({ id, result: { protocolVersion: params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "soak", version: "1.0.0" } } });
  } else if (method === "tools/list") send({ id, result: { tools } });
  else if (method === "ping") send({ id, result: {} });
  else if (method === "tools/call" && params.name === "increment") send({ id, result: text(++counter) });
  else if (method === "tools/call" && params.name === "pid") send({ id, result: text(process.pid) });
  else send({ id, error: { code: -32601, message: "unknown method " + method } });
});
process.stdin.on("end", () => process.exit(0));
`;

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function memory(): { rss: number; heapUsed: number } {
  gc();
  gc();
  const { rss, heapUsed } = process.memoryUsage();
  return { rss, heapUsed };
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("hundreds of sessions over a small worker cap leave no session, worker or server process behind", async (t) => {
  t.timeout(58_000);
  const script = `${tmpFile("soak-server")}.mjs`;
  const pidFile = tmpFile("soak-pids");
  const fixtureEvents = tmpFile("soak-fixture-events");
  writeFileSync(script, LIGHT_SERVER);
  t.teardown(() => {
    for (const file of [script, pidFile, fixtureEvents]) rmSync(file, { force: true });
  });

  const pool = new McpPool(
    parseConfig({
      servers: {
        light: { command: process.execPath, args: [script], env: { SOAK_PIDS: pidFile }, scope: "session", stderr: "ignore" },
        fx: { ...stdioServer([], { FIXTURE_EVENTS: fixtureEvents }), scope: "session" },
        fxm: { ...stdioServer([], { FIXTURE_EVENTS: fixtureEvents }, "modern"), scope: "session" },
      },
      limits: { maxWorkers: 4, maxSessions: 40, sessionIdleTimeoutMs: 250, acquireTimeoutMs: 30_000 },
    }),
  );
  t.teardown(() => pool.close());
  const opened = new Set<string>();
  let closes = 0;
  pool.on("session:open", (e: PoolEvent) => opened.add(e.sessionId!));
  pool.on("session:close", () => closes++);
  await pool.ready();
  assertEra(t, pool, "legacy", ["fx"]);
  assertEra(t, pool, "modern", ["fxm"]);

  /** One session's life: open on its first call, a call or two, then close or just walk away. */
  const failures = new Map<string, number>();
  let wrongCount = 0;
  const live = async (i: number): Promise<void> => {
    const id = `soak-${i}`;
    const session = pool.session(id);
    try {
      // Its first call opens a fresh server process of its own: the counter must start at 1.
      const first = i % 3 === 1 ? await pool.callTool("light__increment", {}, { sessionId: id }) : await session.callTool("light__increment");
      if (text(first) !== "1") wrongCount++;
      if (i % 3 === 2) await session.callTool("light__pid");
      if (i % 30 === 0) await session.callTool("fx__echo", { message: id });
      if (i % 30 === 15) await session.callTool("fxm__echo", { message: id });
      // i % 3 === 1 walks away: the idle timeout, maxSessions or the worker cap closes it.
      if (i % 3 !== 1) await session.close();
    } catch (error) {
      const code = error instanceof McpPoolError ? error.code : String(error);
      failures.set(code, (failures.get(code) ?? 0) + 1);
    }
  };
  const runSessions = async (from: number, to: number, budgetMs: number): Promise<number> => {
    const until = Date.now() + budgetMs;
    let next = from;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < to && Date.now() < until) await live(next++);
      }),
    );
    return next - from;
  };
  const settled = async (): Promise<void> => {
    await waitFor(() => {
      const s = pool.stats();
      return s.sessions.active === 0 && s.workers.active === 0 && s.workers.queued === 0 && s.calls.inFlight === 0;
    }, 10_000);
    // Piscina lets idle threads go after 1 s; measure without them, as at the start.
    await sleep(1_300);
  };

  // Warm up (module loading, JIT, worker threads), then take the baseline.
  await runSessions(0, WARM_UP, 10_000);
  await settled();
  const before = memory();

  let maxWorkers = 0;
  const sampler = setInterval(() => (maxWorkers = Math.max(maxWorkers, pool.stats().workers.active)), 5);
  const started = Date.now();
  const ran = await runSessions(WARM_UP, WARM_UP + SESSIONS, SOAK_BUDGET_MS);
  const soakMs = Date.now() - started;
  clearInterval(sampler);
  await settled();
  const after = memory();

  const pids = readFileSync(pidFile, "utf8").split("\n").filter(Boolean).map(Number);
  const fixturePids = [...new Set(readEvents(fixtureEvents).filter((e) => e.event === "start").map((e) => e.pid as number))];
  const stats = pool.stats();
  t.log(`${ran} sessions in ${soakMs} ms (+${WARM_UP} warm-up), ${pids.length} light server processes, ${fixturePids.length} fixture processes, most workers active ${maxWorkers}/4`);
  t.log(`sessions opened ${opened.size}, session:close events ${closes}, failures ${JSON.stringify(Object.fromEntries(failures))}`);
  t.log(`rss ${mb(before.rss)} -> ${mb(after.rss)} (${mb(after.rss - before.rss)}), heapUsed ${mb(before.heapUsed)} -> ${mb(after.heapUsed)} (${mb(after.heapUsed - before.heapUsed)})`);

  // A sanity floor for a heavily loaded machine; unloaded, all of them run well within the budget.
  t.true(ran >= 60, `only ${ran} sessions ran within the budget`);
  t.deepEqual(Object.fromEntries(failures), {});
  t.is(wrongCount, 0, "a session's first call saw another session's state");
  t.true(maxWorkers <= 4, `workers.active reached ${maxWorkers}`);
  t.is(opened.size, ran + WARM_UP);
  t.is(closes, opened.size);
  t.deepEqual(stats.sessions, { active: 0, max: 40 });
  t.deepEqual(stats.workers, { active: 0, max: 4, queued: 0 });
  t.is(stats.calls.queued, 0);
  t.deepEqual(stats.servers.light!.connections, []);
  t.deepEqual(stats.servers.fx!.connections, []);
  t.deepEqual(stats.servers.fxm!.connections, []);
  // One process per session at least (a session whose connection was evicted may have had two), plus discovery.
  t.true(pids.length >= ran + WARM_UP + 1, `${pids.length} light server processes for ${ran + WARM_UP} sessions`);
  // Discovery and at least one session of each fixture.
  t.true(fixturePids.length >= 4, `${fixturePids.length} fixture processes`);
  await waitFor(() => [...pids, ...fixturePids].every((pid) => !isAlive(pid)), 5_000);
  t.true(after.heapUsed - before.heapUsed < 16 * 1024 * 1024, `heapUsed grew by ${mb(after.heapUsed - before.heapUsed)}`);
  t.true(after.rss - before.rss < 96 * 1024 * 1024, `rss grew by ${mb(after.rss - before.rss)}`);

  await pool.close();
  t.deepEqual(pool.stats().workers, { active: 0, max: 4, queued: 0 });
});

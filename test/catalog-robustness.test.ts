/**
 * The catalog under hostile or unusual tool lists, against real servers: thousands of same-named tools,
 * names contested by a server that comes up late, per-caller tool lists, task-only tools and unusable tool
 * schemas (the pure cases are in catalogs.test.ts).
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { CallToolResult } from "@modelcontextprotocol/client";
import { createPool, McpPool, parseConfig, type PoolEvent, type PoolTool } from "../src/index.js";
import { code } from "./helpers/faults.js";
import { startHttpFixture, stdioServer, waitFor } from "./helpers/fixtures.js";

const CATALOG_SERVER = fileURLToPath(new URL("./fixtures/catalog-server.js", import.meta.url));

function catalogServer(...args: string[]) {
  return { command: process.execPath, args: [CATALOG_SERVER, "stdio", ...args] };
}

/** Starts the catalog fixture over Streamable HTTP; stopped when the test ends. */
async function catalogHttpServer(t: { teardown(fn: () => unknown): void }, ...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [CATALOG_SERVER, "http", ...args], { stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  t.teardown(async () => {
    child.kill("SIGKILL");
    await exited;
  });
  const lines = createInterface({ input: child.stdout! });
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("catalog fixture did not start within 20 s")), 20_000);
    lines.on("line", (line) => {
      const m = /^LISTENING (\S+)$/.exec(line.trim());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
}

const names = (entries: PoolTool[]) => entries.map((e) => e.name);

function text(result: CallToolResult): string {
  const first = result.content[0];
  return first && first.type === "text" ? first.text : "";
}

// ---------------------------------------------------------------- real servers

test("a server listing 16,000 tools of one name is usable and never blocks the main thread for seconds", async (t) => {
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const pool = await createPool({ servers: { s: catalogServer("--same-name", "16000") } });
  t.teardown(() => pool.close());
  const twins = (await pool.listTools()).filter((e) => e.tool.name === "twin");
  t.is(twins.length, 16_000);
  t.is(new Set(twins.map((e) => e.name)).size, 16_000);
  t.is(twins[499]!.name, "s__twin_500");
  t.is(twins[499]!.tool.description, "copy 499");
  t.is(pool.stats().servers.s!.tools, 16_002);
  t.is(text(await pool.callTool("s__twin_500", { i: 499 })), "499");
  // A block is recorded when the monitor's timer fires after it: give it the chance.
  await new Promise((resolve) => setTimeout(resolve, 50));
  delay.disable();
  // A generous bound, to catch only the quadratic case (about 8 s for 16,000 tools).
  const maxMs = delay.max / 1e6;
  t.log(`main thread blocked at most ${maxMs.toFixed(0)} ms`);
  t.true(maxMs < 3_000, `the main thread was blocked for ${maxMs.toFixed(0)} ms`);
});

test('with prefix "", a server listed first that comes up later does not take over a name already handed out', async (t) => {
  // A port with nothing on it yet: the first server fails its first attempt and comes up later.
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  const pool = await createPool({
    servers: {
      late: { url: `http://127.0.0.1:${port}/mcp`, prefix: "", reconnect: { maxAttempts: 1_000, initialDelayMs: 50, maxDelayMs: 200 } },
      early: { ...stdioServer(), prefix: "" },
    },
  });
  t.teardown(() => pool.close());
  const changes: PoolEvent[] = [];
  pool.on("tools:changed", (e: PoolEvent) => changes.push(e));
  const earlyPid = pool.stats().servers.early!.connections[0]!.pid;
  t.is(text(await pool.callTool("pid")), String(earlyPid));

  const fixture = await startHttpFixture("http", ["--port", String(port)]);
  t.teardown(() => fixture.close());
  await waitFor(() => changes.some((e) => e.server === "late"), 20_000);

  const tools = await pool.listTools();
  t.is(tools.find((e) => e.name === "pid")?.server, "early");
  t.is(tools.find((e) => e.name === "late__pid")?.server, "late");
  t.is(new Set(names(tools)).size, tools.length);
  // The name keeps reaching the server it was handed out for.
  t.is(text(await pool.callTool("pid")), String(earlyPid));
  t.is(text(await pool.callTool("late__pid")), String(fixture.pid));
});

test("each session lists and calls only its own tools of a session-scoped server whose tools depend on the caller", async (t) => {
  const url = await catalogHttpServer(t, "--per-user");
  const pool = await createPool({
    servers: { h: { url, scope: "session" }, g: catalogServer() },
    limits: { acquireTimeoutMs: 30_000 },
  });
  t.teardown(() => pool.close());
  const alice = pool.session("alice", { headers: { Authorization: "Bearer alice" } });
  const bob = pool.session("bob", { headers: { Authorization: "Bearer bob" } });

  const [aliceTools, bobTools] = await Promise.all([alice.listTools(), bob.listTools()]);
  t.true(names(aliceTools).includes("h__private_alice"));
  t.false(names(aliceTools).includes("h__private_bob"));
  t.true(names(bobTools).includes("h__private_bob"));
  t.false(names(bobTools).includes("h__private_alice"));
  for (const list of [aliceTools, bobTools]) {
    for (const n of ["h__echo", "h__whoami", "g__echo", "g__whoami"]) t.true(names(list).includes(n), n);
  }
  // The pool's own list is the one the config's headers get.
  t.false(names(await pool.listTools()).some((n) => n.startsWith("h__private_")));

  t.is(text(await alice.callTool("h__private_alice")), "private tool of alice");
  t.is(text(await pool.callTool("h__private_bob", {}, { sessionId: "bob" })), "private tool of bob");
  t.is(await code(bob.callTool("h__private_alice")), "TOOL_NOT_FOUND");
  t.is(await code(pool.callTool("h__private_bob", {}, { sessionId: "alice" })), "TOOL_NOT_FOUND");
  t.is(JSON.parse(text(await alice.callTool("h__whoami"))).user, "alice");
  // Listing again after both connections listed: neither sees the other's.
  t.false(names(await alice.listTools()).includes("h__private_bob"));
  t.false(names(await bob.listTools()).includes("h__private_alice"));
});

test("a session's first call to one of its own tools finds it without listing first, and never finds another session's", async (t) => {
  const url = await catalogHttpServer(t, "--per-user");
  const pool = await createPool({ servers: { h: { url, scope: "session" } }, limits: { acquireTimeoutMs: 30_000 } });
  t.teardown(() => pool.close());
  const carol = pool.session("carol", { headers: { Authorization: "Bearer carol" } });
  t.is(text(await carol.callTool("h__private_carol")), "private tool of carol");
  const dave = pool.session("dave", { headers: { Authorization: "Bearer dave" } });
  t.is(await code(dave.callTool("h__private_carol")), "TOOL_NOT_FOUND");
  t.is(text(await pool.callTool("h__private_dave", {}, { sessionId: "dave" })), "private tool of dave");
  t.is(await code(pool.callTool("h__private_dave")), "TOOL_NOT_FOUND");
});

test("a tool that requires task augmentation is not listed and calling it is TOOL_NOT_FOUND; an optional one works", async (t) => {
  const pool = await createPool({ servers: { s: catalogServer("--task-tools") } });
  t.teardown(() => pool.close());
  const listed = names(await pool.listTools());
  t.deepEqual(listed.sort(), ["s__echo", "s__maybe_task", "s__whoami"]);
  t.is(pool.stats().servers.s!.tools, 3);
  t.is(await code(pool.callTool("s__research")), "TOOL_NOT_FOUND");
  t.is(text(await pool.callTool("s__maybe_task")), "ran without a task");
});

test("a tool whose inputSchema is not an object schema is skipped with a warning log event and the server's other tools work", async (t) => {
  const pool = new McpPool(parseConfig({ servers: { s: catalogServer("--bad-tools") } }));
  t.teardown(() => pool.close());
  const logs: PoolEvent[] = [];
  pool.on("log", (e: PoolEvent) => logs.push(e));
  await pool.ready();
  t.is(pool.stats().servers.s!.state, "ready");
  t.deepEqual(names(await pool.listTools()).sort(), ["s__echo", "s__whoami"]);
  t.is(text(await pool.callTool("s__echo", { message: "still works" })), "still works");
  t.is(await code(pool.callTool("s__bad_input")), "TOOL_NOT_FOUND");
  const warnings = logs.filter((e) => e.server === "s" && e.level === "warning");
  t.is(warnings.length, 2);
  t.true(warnings.some((e) => typeof e.data === "string" && e.data.includes('"bad_input"')));
  t.true(warnings.some((e) => typeof e.data === "string" && e.data.includes("unnamed")));
});

/**
 * Both protocol eras through the pool (issue 13): every transport × era that exists connects in its
 * era; a server's era is probed once and the verdict reused by every later connection (replicas, session
 * connections, reopens); `protocol` pins an era or a revision; a server that changes era in place is
 * probed again; list_changed reaches the pool in the 2026-07-28 era (subscriptions/listen).
 * The legacy fixture is test/fixtures/server.ts (v1 SDK), the modern one test/fixtures/modern-server.ts (v2).
 */
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { createServer, request } from "node:http";
import { rmSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { createPool, McpPool, McpPoolError, parseConfig, type PoolConfigInput, type PoolEvent, type ServerConfigInput } from "../src/index.js";
import { FIXTURE_SERVER, MODERN_FIXTURE_SERVER, readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, type FixtureEra } from "./helpers/fixtures.js";
import { connectionOf, server, settle, testSlots } from "./helpers/faults.js";

const slot = testSlots(2);

const MODERN = "2026-07-28";
const LEGACY = "2025-11-25";
/** No keepalive: in the 2026-07-28 era it sends server/discover, which these tests count. */
const QUIET = { keepalive: { intervalMs: 0 } };

async function openPool(t: ExecutionContext, input: PoolConfigInput): Promise<McpPool> {
  await slot(t);
  const pool = await createPool(input);
  t.teardown(() => pool.close());
  return pool;
}

function eventsFile(t: ExecutionContext, name: string): string {
  const file = tmpFile(name);
  t.teardown(() => rmSync(file, { force: true }));
  return file;
}

const count = (file: string, event: string) => readEvents(file).filter((e) => e.event === event).length;

async function echo(pool: McpPool, name: string, message: string): Promise<string> {
  const result = await pool.callTool(name, { message }, { timeoutMs: 10_000 });
  return (result.content as Array<{ text: string }>)[0]!.text;
}

const COMBINATIONS: Array<{ transport: "stdio" | "http" | "sse"; era: FixtureEra }> = [
  { transport: "stdio", era: "legacy" },
  { transport: "stdio", era: "modern" },
  { transport: "http", era: "legacy" },
  { transport: "http", era: "modern" },
  // The 2026-07-28 era has no SSE transport.
  { transport: "sse", era: "legacy" },
];

for (const { transport, era } of COMBINATIONS) {
  test(`${transport} × ${era}: protocol "auto" connects in the server's era, calls, and says which`, async (t) => {
    let config: ServerConfigInput;
    if (transport === "stdio") {
      config = stdioServer([], undefined, era);
    } else {
      const fixture = await startHttpFixture(transport, [], undefined, era);
      t.teardown(() => fixture.close());
      config = transport === "sse" ? { url: fixture.url, transport: "sse" } : { url: fixture.url };
    }
    const pool = await openPool(t, { servers: { f: server(config) } });
    t.is(await echo(pool, "f__echo", `${transport} ${era}`), `${transport} ${era}`);
    const version = era === "modern" ? MODERN : LEGACY;
    t.is(pool.stats().servers.f!.protocolVersion, version);
    t.like(pool.serverInfo("f"), { protocolVersion: version, serverInfo: { name: "fixture" }, instructions: "Tools of the fixture fixture." });
  });
}

test("a server's era is probed once: a session-scoped 2026-07-28 server serves 12 sessions after one server/discover", async (t) => {
  const events = eventsFile(t, "eras-probe-sessions");
  const fixture = await startHttpFixture("http", [], { FIXTURE_EVENTS: events }, "modern");
  t.teardown(() => fixture.close());
  // Twelve workers start at once on a small machine: room to do so.
  // Twelve fresh workers on a small machine shared with other suites: each is about a second of CPU to start
  // (module compile, Node's fetch, the SDK's 2026 schemas), so the deadlines leave room for all of them; what is
  // checked is the one probe, not speed.
  const pool = await openPool(t, { servers: { s: server({ url: fixture.url, scope: "session", ...QUIET }) }, limits: { acquireTimeoutMs: 90_000 } });
  const sessions = Array.from({ length: 12 }, (_, i) => pool.session(`user-${i}`));
  t.teardown(() => Promise.all(sessions.map((s) => s.close())));
  const answers = await Promise.all(sessions.map((s, i) => s.callTool("s__echo", { message: `u${i}` }, { timeoutMs: 90_000 })));
  t.deepEqual(answers.map((r) => (r.content as Array<{ text: string }>)[0]!.text), sessions.map((_, i) => `u${i}`));
  t.is(pool.stats().sessions.active, 12);
  t.is(count(events, "discover"), 1, "one probe (the discovery connection's), none per session connection");
  t.is(count(events, "initialize"), 0);
});

/**
 * A proxy in front of `upstream` that holds the first `server/discover` for `delayMs` before passing it on.
 * Counts the discovers it saw.
 */
async function slowDiscoverProxy(t: ExecutionContext, upstream: string, delayMs: number): Promise<{ url: string; discovers: number }> {
  const target = new URL(upstream);
  const proxy = { url: "", discovers: 0 };
  const http = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const discover = req.method === "POST" && /"method"\s*:\s*"server\/discover"/.test(body.toString("utf8"));
      if (discover) proxy.discovers++;
      const forward = (): void => {
        const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: { ...req.headers, host: target.host } }, (upRes) => {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          upRes.pipe(res);
        });
        up.on("error", () => res.destroy());
        res.on("close", () => up.destroy());
        up.end(body);
      };
      if (discover && proxy.discovers === 1) setTimeout(forward, delayMs).unref();
      else forward();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    http.closeAllConnections();
    http.close(() => resolve());
  }));
  const { port } = http.address() as { port: number };
  proxy.url = `http://127.0.0.1:${port}${target.pathname}`;
  return proxy;
}

test("over Streamable HTTP the server/discover probe has the whole connect deadline: one answered after half of it connects on the first attempt", async (t) => {
  const fixture = await startHttpFixture("http", [], undefined, "modern");
  t.teardown(() => fixture.close());
  // The probe's answer comes after 6 s of a 10 s connect deadline (the default): with half the deadline for the
  // probe it timed out, the attempt failed and the server was probed again.
  const proxy = await slowDiscoverProxy(t, fixture.url, 6_000);
  await slot(t);
  const pool = new McpPool(parseConfig({ servers: { m: server({ url: proxy.url, connectTimeoutMs: 10_000, ...QUIET }) } }));
  t.teardown(() => pool.close());
  const failed: PoolEvent[] = [];
  pool.on("connection:failed", (e: PoolEvent) => failed.push(e));
  await pool.ready();
  t.deepEqual(failed, []);
  t.is(pool.stats().servers.m!.state, "ready");
  t.is(pool.stats().servers.m!.protocolVersion, MODERN);
  t.is(proxy.discovers, 1);
  t.is(await echo(pool, "m__echo", "late"), "late");
});

test("a server's era is probed once: replicas and a reopen after kill -9 connect with the verdict, over stdio", async (t) => {
  const events = eventsFile(t, "eras-probe-replicas");
  const pool = await openPool(t, {
    servers: { m: server({ ...stdioServer([], { FIXTURE_EVENTS: events }, "modern"), connections: { min: 3 }, ...QUIET }) },
  });
  const connections = pool.stats().servers.m!.connections;
  t.is(connections.length, 3);
  t.true(connections.every((c) => c.state === "ready"));
  t.is(count(events, "start"), 3);
  t.is(count(events, "discover"), 1, "the first replica probed; the other two connected with its verdict");

  const victim = connections[1]!;
  process.kill(victim.pid!, "SIGKILL");
  await waitFor(() => pool.stats().servers.m!.connections.every((c) => c.state === "ready" && c.pid !== victim.pid), 20_000);
  t.is(count(events, "start"), 4);
  t.is(count(events, "discover"), 1, "the reopened server was not probed again");
  t.is(await echo(pool, "m__echo", "after"), "after");
  t.is(pool.stats().servers.m!.protocolVersion, MODERN);
});

test('protocol "legacy" speaks the handshake to a server that speaks both eras, and never probes', async (t) => {
  const events = eventsFile(t, "eras-legacy");
  const pool = await openPool(t, {
    servers: { b: server({ ...stdioServer(["--legacy", "serve"], { FIXTURE_EVENTS: events }, "modern"), protocol: "legacy", ...QUIET }) },
  });
  t.is(await echo(pool, "b__echo", "old"), "old");
  t.is(pool.stats().servers.b!.protocolVersion, LEGACY);
  t.is(count(events, "discover"), 0);
  t.is(count(events, "initialize"), 1);
});

test("a pinned revision the server does not offer fails that server alone, with SERVER_UNAVAILABLE and the reason", async (t) => {
  const pool = await openPool(t, {
    servers: {
      old: server({ ...stdioServer(), protocol: MODERN, reconnect: { maxAttempts: 0 } }),
      new: server({ ...stdioServer([], undefined, "modern"), protocol: MODERN }),
    },
  });
  t.is(await echo(pool, "new__echo", "pinned"), "pinned");
  t.is(pool.stats().servers.new!.protocolVersion, MODERN);
  const refused = await t.throwsAsync(pool.callTool("old__echo", { message: "x" }, { timeoutMs: 5_000 }));
  t.true(refused instanceof McpPoolError && refused.code === "SERVER_UNAVAILABLE", String(refused));
  t.regex(refused!.message, /2026-07-28/);
  t.regex(String((refused as Error).cause), /pinned protocol version 2026-07-28/, "the SDK's reason, in cause");
  t.is(pool.stats().servers.old!.protocolVersion, undefined);
});

test("protocol accepts auto, legacy and revisions of the stateless era; anything else is CONFIG_INVALID naming the path", (t) => {
  const base = { command: "node" };
  for (const protocol of ["auto", "legacy", "2026-07-28", "2027-01-01"]) {
    t.is(parseConfig({ servers: { a: { ...base, protocol } } }).servers.a!.protocol, protocol);
  }
  t.is(parseConfig({ servers: { a: base } }).servers.a!.protocol, "auto");
  for (const [protocol, why] of [["2025-06-18", /use "legacy"/], ["latest", /must be "auto", "legacy" or a protocol revision/], [2026, /expected string/]] as const) {
    const error = t.throws(() => parseConfig({ servers: { a: { ...base, protocol } } }));
    t.true(error instanceof McpPoolError && error.code === "CONFIG_INVALID");
    t.regex(error!.message, /servers\.a\.protocol/);
    t.regex(error!.message, why);
  }
});

/**
 * A stdio server that is the legacy fixture while `flag` does not exist and the modern-only one while
 * it does: the same server upgraded (and downgraded) in place between two starts.
 */
function upgradable(flag: string, events: string): ServerConfigInput {
  const script = 'if [ -e "$0" ]; then exec "$1" "$3" stdio; else exec "$1" "$2" stdio; fi';
  return { command: "/bin/sh", args: ["-c", script, flag, process.execPath, FIXTURE_SERVER, MODERN_FIXTURE_SERVER], env: { FIXTURE_EVENTS: events } };
}

test("a server upgraded in place to 2026-07-28 (and back) is probed again on its reopen and served in its new era", async (t) => {
  const flag = tmpFile("eras-upgraded");
  t.teardown(() => rmSync(flag, { force: true }));
  const events = eventsFile(t, "eras-upgrade");
  const pool = await openPool(t, { servers: { u: server({ ...upgradable(flag, events), ...QUIET }) } });
  const failed: unknown[] = [];
  pool.on("connection:failed", (e) => failed.push(e));
  t.is(pool.stats().servers.u!.protocolVersion, LEGACY);

  const reopen = async (era: string) => {
    const pid = connectionOf(pool, "u").pid!;
    process.kill(pid, "SIGKILL");
    await waitFor(() => {
      const c = connectionOf(pool, "u");
      return c.state === "ready" && c.pid !== pid && pool.stats().servers.u!.protocolVersion === era;
    }, 20_000);
  };
  writeFileSync(flag, "");
  await reopen(MODERN);
  t.is(await echo(pool, "u__echo", "upgraded"), "upgraded");
  t.is(count(events, "discover"), 2, "the legacy server's probe at start, and the new server's after its initialize was refused");

  rmSync(flag);
  await reopen(LEGACY);
  t.is(await echo(pool, "u__echo", "downgraded"), "downgraded");
  t.deepEqual(failed, [], "each change was found within one attempt");
});

for (const transport of ["stdio", "http"] as const) {
  test(`${transport}: list_changed reaches the pool in the 2026-07-28 era (subscriptions/listen), and the new tool is callable`, async (t) => {
    let config: ServerConfigInput = stdioServer([], undefined, "modern");
    if (transport === "http") {
      const fixture = await startHttpFixture("http", [], undefined, "modern");
      t.teardown(() => fixture.close());
      config = { url: fixture.url };
    }
    const pool = await openPool(t, { servers: { m: server(config) } });
    t.is(pool.stats().servers.m!.protocolVersion, MODERN);
    const changed = new Promise<void>((resolve) => pool.once("tools:changed", () => resolve()));
    await pool.callTool("m__add_tool", { name: "fresh" }, { timeoutMs: 10_000 });
    await changed;
    t.true((await pool.listTools()).some((tool) => tool.name === "m__fresh"));
    const result = await settle(pool.callTool("m__fresh", {}, { timeoutMs: 10_000 }));
    t.deepEqual(result, { ok: true, text: "fresh called" });
  });
}

test("a 2026-07-28 answer of input_required that nobody can fulfil (no input capability declared) is PROTOCOL_ERROR, and the connection serves on", async (t) => {
  const pool = await openPool(t, { servers: { m: server(stdioServer([], undefined, "modern")) } });
  const inputRequired = {
    result: {
      resultType: "input_required",
      inputRequests: { confirm: { method: "elicitation/create", params: { mode: "form", message: "Sure?", requestedSchema: { type: "object", properties: { ok: { type: "boolean" } } } } } },
    },
  };
  const error = await t.throwsAsync(pool.callTool("m__raw_answer", { answer: JSON.stringify(inputRequired) }, { timeoutMs: 10_000 }));
  t.true(error instanceof McpPoolError && error.code === "PROTOCOL_ERROR", String(error));
  // Read as a request for input, not refused as a malformed result (which is PROTOCOL_ERROR too).
  t.regex(error!.message, /asks the client for input/);
  t.is(await echo(pool, "m__echo", "still here"), "still here");
  t.is(connectionOf(pool, "m").restarts, 0);
});

const PARAM_HEADER_SERVER = fileURLToPath(new URL("./fixtures/param-header-server.js", import.meta.url));

test("a 2026-07-28 tool that mirrors an argument into an Mcp-Param header over Streamable HTTP gets the header", async (t) => {
  const child = spawn(process.execPath, [PARAM_HEADER_SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => void child.kill("SIGKILL"));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("param-header fixture did not listen within 20 s")), 20_000);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const match = /^LISTENING (\S+)$/.exec(line.trim());
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
  });
  const pool = await openPool(t, { servers: { p: server({ url }) } });
  t.is(pool.stats().servers.p!.protocolVersion, MODERN);
  const result = await pool.callTool("p__region_echo", { region: "eu", message: "hi" }, { timeoutMs: 10_000 });
  t.deepEqual(result.content, [{ type: "text", text: "eu: hi (header eu)" }]);
});

for (const era of ["legacy", "modern"] as const) {
  test(`${era}: a result over maxMessageMb on Streamable HTTP is RESULT_TOO_LARGE, and the next call is served`, async (t) => {
    const fixture = await startHttpFixture("http", [], undefined, era);
    t.teardown(() => fixture.close());
    const pool = await openPool(t, { servers: { h: server({ url: fixture.url }) }, limits: { maxMessageMb: 0.05 } });
    const error = await t.throwsAsync(pool.callTool("h__huge", { bytes: 200_000 }, { timeoutMs: 10_000 }));
    t.true(error instanceof McpPoolError && error.code === "RESULT_TOO_LARGE", String(error));
    t.is(await echo(pool, "h__echo", "after"), "after");
  });
}

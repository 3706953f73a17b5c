/**
 * Config: defaults, transport inference, synonyms, and CONFIG_INVALID naming every offending path.
 * Pure (no threads), except the createPool tests, which check that nothing starts on bad input.
 */
import test from "ava";
import { createPool, McpPool, McpPoolError, parseConfig, type PoolConfig, type ServerConfig } from "../src/index.js";
import { readEvents, stdioServer, tmpFile } from "./helpers/fixtures.js";

/** Runs `fn`, expects CONFIG_INVALID, and returns the error. */
function configError(t: import("ava").ExecutionContext, input: unknown): McpPoolError {
  const error = t.throws(() => parseConfig(input));
  t.true(error instanceof McpPoolError);
  t.is((error as McpPoolError).code, "CONFIG_INVALID");
  return error as McpPoolError;
}

/** The path named in CONFIG_INVALID's message (CONTRACT: "a message naming every offending path"). */
function assertNamesPaths(t: import("ava").ExecutionContext, error: McpPoolError, paths: string[]): void {
  for (const path of paths) t.true(error.message.includes(path), `the message names ${path}: ${error.message}`);
}

test("parseConfig fills in every documented limit default", (t) => {
  const config = parseConfig({ servers: { a: { command: "node" } } });
  t.deepEqual(config.limits, {
    maxWorkers: 32,
    maxSessions: 200,
    maxQueue: 1_000,
    acquireTimeoutMs: 10_000,
    maxInFlightPerConnection: 64,
    minIdleBeforeEvictionMs: 5_000,
    sessionIdleTimeoutMs: 600_000,
    workerHeapMb: 256,
    workerNice: 0,
    maxMessageMb: 32,
    drainTimeoutMs: 5_000,
    workerHeartbeatMs: 10_000,
  });
});

test("parseConfig fills in every documented server default", (t) => {
  const server = parseConfig({ servers: { a: { command: "node" } } }).servers.a!;
  t.is(server.name, "a");
  t.is(server.transport, "stdio");
  t.is(server.command, "node");
  t.deepEqual(server.args, []);
  t.deepEqual(server.env, {});
  t.is(server.cwd, undefined);
  t.is(server.stderr, "inherit");
  t.is(server.url, undefined);
  t.deepEqual(server.headers, {});
  t.is(server.scope, "shared");
  t.deepEqual(server.connections, { min: 1, max: 1, idleTimeoutMs: 30_000 });
  t.is(server.toolCallTimeoutMs, 60_000);
  t.is(server.connectTimeoutMs, 10_000);
  t.deepEqual(server.reconnect, { maxAttempts: 15, initialDelayMs: 250, maxDelayMs: 4_000, probeIntervalMs: 30_000 });
  t.deepEqual(server.keepalive, { intervalMs: 15_000, timeoutMs: 5_000, failures: 2 });
  t.is(server.retry, "safe");
  t.is(server.tools.include, undefined);
  t.is(server.tools.exclude, undefined);
  t.is(server.tools.overrides, undefined);
  t.deepEqual(server.prompts, {});
  t.deepEqual(server.resources, {});
  t.is(server.prefix, "a");
});

test("parseConfig keeps explicit values over defaults", (t) => {
  const config = parseConfig({
    servers: {
      a: {
        command: "node",
        args: ["x.js"],
        env: { K: "v" },
        cwd: "/tmp",
        connections: { min: 2, max: 4 },
        toolCallTimeoutMs: 5,
        reconnect: { maxAttempts: 0 },
        keepalive: { intervalMs: 0 },
        prefix: "",
      },
    },
    limits: { maxWorkers: 4, maxQueue: 0 },
  });
  const a = config.servers.a!;
  t.deepEqual(a.args, ["x.js"]);
  t.deepEqual(a.env, { K: "v" });
  t.is(a.cwd, "/tmp");
  t.deepEqual(a.connections, { min: 2, max: 4, idleTimeoutMs: 30_000 });
  t.is(a.toolCallTimeoutMs, 5);
  t.deepEqual(a.reconnect, { maxAttempts: 0, initialDelayMs: 250, maxDelayMs: 4_000, probeIntervalMs: 30_000 });
  t.is(a.keepalive.intervalMs, 0);
  t.is(a.prefix, "");
  t.is(config.limits.maxWorkers, 4);
  t.is(config.limits.maxQueue, 0);
  t.is(config.limits.maxSessions, 200);
});

test("parseConfig defaults connections.max to connections.min", (t) => {
  const { connections } = parseConfig({ servers: { a: { command: "node", connections: { min: 3 } } } }).servers.a!;
  t.is(connections.min, 3);
  t.is(connections.max, 3);
});

test("parseConfig infers stdio from command and Streamable HTTP from url", (t) => {
  const config = parseConfig({
    servers: {
      local: { command: "node", args: ["server.js"] },
      remote: { url: "http://127.0.0.1:3001/mcp", headers: { Authorization: "Bearer x" } },
    },
  });
  t.is(config.servers.local!.transport, "stdio");
  t.is(config.servers.remote!.transport, "http");
  t.is(config.servers.remote!.url, "http://127.0.0.1:3001/mcp");
  t.deepEqual(config.servers.remote!.headers, { Authorization: "Bearer x" });
});

test('parseConfig uses legacy SSE when transport is "sse"', (t) => {
  const config = parseConfig({ servers: { old: { url: "http://127.0.0.1:3001/sse", transport: "sse" } } });
  t.is(config.servers.old!.transport, "sse");
});

test("parseConfig accepts type as a synonym of transport", (t) => {
  const config = parseConfig({
    servers: {
      a: { url: "http://127.0.0.1:1/sse", type: "sse" },
      b: { url: "http://127.0.0.1:1/mcp", type: "streamable-http" },
      c: { url: "http://127.0.0.1:1/mcp", type: "http" },
      d: { command: "node", type: "stdio" },
    },
  });
  t.is(config.servers.a!.transport, "sse");
  t.is(config.servers.b!.transport, "http");
  t.is(config.servers.c!.transport, "http");
  t.is(config.servers.d!.transport, "stdio");
});

test("parseConfig accepts mcpServers as a synonym of servers", (t) => {
  const config = parseConfig({ mcpServers: { everything: { command: "npx", args: ["-y", "server"] } } });
  t.deepEqual(Object.keys(config.servers), ["everything"]);
  t.is(config.servers.everything!.transport, "stdio");
  t.deepEqual(config.servers.everything!.args, ["-y", "server"]);
});

test("parseConfig rejects a bad url with CONFIG_INVALID naming servers.<name>.url", (t) => {
  const error = configError(t, { servers: { search: { url: "not a url" } } });
  assertNamesPaths(t, error, ["servers.search.url"]);
});

test("parseConfig rejects unknown keys at the top, in a server and in limits, naming each", (t) => {
  const error = configError(t, {
    servers: { x: { command: "node", bogus: 1 } },
    limits: { maxWorkerz: 3 },
    extra: true,
  });
  assertNamesPaths(t, error, ["servers.x.bogus", "limits.maxWorkerz", "extra"]);
});

test("parseConfig names every offending path when several are wrong at once", (t) => {
  const error = configError(t, {
    servers: {
      search: { url: "ftp://example.com/mcp" },
      local: { command: "node", toolCallTimeoutMs: -1 },
    },
    limits: { maxQueue: "many" },
  });
  assertNamesPaths(t, error, ["servers.search.url", "servers.local.toolCallTimeoutMs", "limits.maxQueue"]);
});

test("parseConfig rejects a server with both command and url", (t) => {
  const error = configError(t, { servers: { both: { command: "node", url: "http://127.0.0.1:1/mcp" } } });
  assertNamesPaths(t, error, ["servers.both"]);
});

test("parseConfig rejects a server with neither command nor url", (t) => {
  const error = configError(t, { servers: { none: { args: ["x"] } } });
  assertNamesPaths(t, error, ["servers.none"]);
});

test("parseConfig rejects connections.max below connections.min", (t) => {
  const error = configError(t, { servers: { a: { command: "node", connections: { min: 3, max: 2 } } } });
  assertNamesPaths(t, error, ["servers.a.connections.max"]);
});

test("parseConfig rejects shared servers whose connections.min add up to more than maxWorkers", (t) => {
  const error = configError(t, {
    servers: { a: { command: "node", connections: { min: 2 } }, b: { command: "node", connections: { min: 2 } } },
    limits: { maxWorkers: 3 },
  });
  assertNamesPaths(t, error, ["limits.maxWorkers"]);
});

test("parseConfig rejects a config without servers", (t) => {
  configError(t, {});
  configError(t, { limits: { maxWorkers: 4 } });
});

test("parseConfig rejects non-object input with CONFIG_INVALID", (t) => {
  configError(t, null);
  configError(t, "servers");
  configError(t, 42);
});

test("createPool rejects a bad config with CONFIG_INVALID and starts no server", async (t) => {
  const events = tmpFile("config-invalid-events");
  const error = await t.throwsAsync(
    createPool({
      servers: {
        good: stdioServer([], { FIXTURE_EVENTS: events }),
        search: { url: "not a url" },
      },
    }),
  );
  t.true(error instanceof McpPoolError);
  t.is((error as McpPoolError).code, "CONFIG_INVALID");
  t.true(error!.message.includes("servers.search.url"));
  // Give a wrongly started server time to write its "start" event.
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.deepEqual(readEvents(events), []);
});

// The `@ts-expect-error` lines below are the compile-time half of these tests: tsc fails the build if any of
// them stops being an error, i.e. if a config literal with a wrong key or a wrongly typed option type-checks.

test("createPool type-checks a config literal: an unknown key or a wrongly typed option is a compile error, and CONFIG_INVALID at run time", async (t) => {
  // @ts-expect-error `bogus` is not a server option
  const unknownKey = createPool({ servers: { s: { command: "node", bogus: true } } });
  assertNamesPaths(t, (await t.throwsAsync(unknownKey, { instanceOf: McpPoolError, code: "CONFIG_INVALID" })) as McpPoolError, ["servers.s.bogus"]);
  // @ts-expect-error `maxWorkers` is a number
  const wrongType = createPool({ servers: { s: { command: "node" } }, limits: { maxWorkers: "4" } });
  assertNamesPaths(t, (await t.throwsAsync(wrongType, { instanceOf: McpPoolError, code: "CONFIG_INVALID" })) as McpPoolError, ["limits.maxWorkers"]);
  // @ts-expect-error `retry` is "safe" or "never"
  const wrongValue = createPool({ mcpServers: { s: { url: "http://127.0.0.1:1/mcp", retry: "always" } } });
  assertNamesPaths(t, (await t.throwsAsync(wrongValue, { instanceOf: McpPoolError, code: "CONFIG_INVALID" })) as McpPoolError, ["mcpServers.s.retry"]);
});

test("new McpPool takes the resolved config (ServerConfig is the schema's output): an unparsed literal or a wrong resolved option is a compile error", (t) => {
  const config: PoolConfig = parseConfig({ servers: { s: { command: "node" } } });
  const server: ServerConfig = config.servers.s!;
  t.like(server, { name: "s", transport: "stdio", stderr: "inherit", retry: "safe", prefix: "s", args: [], env: {}, headers: {} });
  // Never called: starting a pool from these would be the mistake the types refuse.
  const refused = [
    // @ts-expect-error an unparsed config lacks what parseConfig fills in (name, transport, prefix, defaults)
    () => new McpPool({ servers: { s: { command: "node" } } }),
    // @ts-expect-error `transport` is "stdio", "http" or "sse" once resolved
    () => new McpPool({ ...config, servers: { s: { ...server, transport: "websocket" } } }),
  ];
  void refused;
});

/** Every option whose name says it is a duration (`…Ms`), as paths into the input config. */
function timerPaths(): string[][] {
  const paths: string[][] = [];
  const walk = (value: unknown, path: string[]) => {
    if (value === null || typeof value !== "object") return;
    for (const [key, v] of Object.entries(value)) {
      if (key.endsWith("Ms") && typeof v === "number") paths.push([...path, key]);
      else walk(v, [...path, key]);
    }
  };
  const config = parseConfig({ servers: { a: { command: "node" } } });
  walk(config.servers.a, ["servers", "a"]);
  walk(config.limits, ["limits"]);
  return paths;
}

function withValue(path: string[], value: unknown): unknown {
  const input: Record<string, unknown> = { servers: { a: { command: "node" } } };
  let at = input;
  for (const key of path.slice(0, -1)) at = (at[key] ??= {}) as Record<string, unknown>;
  at[path.at(-1)!] = value;
  return input;
}

test("parseConfig rejects every timer option above 2^31-1 ms (Node's timer limit) with CONFIG_INVALID naming its path", (t) => {
  const paths = timerPaths();
  // The ones the issue names, at least; the walk finds any added later.
  for (const p of ["servers.a.toolCallTimeoutMs", "servers.a.connectTimeoutMs", "servers.a.keepalive.intervalMs", "servers.a.reconnect.maxDelayMs", "servers.a.connections.idleTimeoutMs", "limits.acquireTimeoutMs", "limits.drainTimeoutMs"]) {
    t.true(paths.some((path) => path.join(".") === p), `${p} is a timer option`);
  }
  for (const path of paths) {
    for (const value of [2 ** 31, Infinity, 1e300]) assertNamesPaths(t, configError(t, withValue(path, value)), [path.join(".")]);
    t.notThrows(() => parseConfig(withValue(path, 2 ** 31 - 1)), `${path.join(".")} may be 2^31-1`);
  }
});

test("parseConfig rejects an empty servers or mcpServers with CONFIG_INVALID", (t) => {
  assertNamesPaths(t, configError(t, { servers: {} }), ["servers", "at least one server"]);
  assertNamesPaths(t, configError(t, { mcpServers: {} }), ["at least one server"]);
});

test('parseConfig rejects a server named "__proto__" from JSON with CONFIG_INVALID naming it', (t) => {
  for (const key of ["servers", "mcpServers"]) {
    const input = JSON.parse(`{"${key}": {"__proto__": {"command": "node"}, "b": {"command": "node"}}}`);
    assertNamesPaths(t, configError(t, input), [`${key}.__proto__`]);
    assertNamesPaths(t, configError(t, JSON.parse(`{"${key}": {"__proto__": {"command": "node"}}}`)), [`${key}.__proto__`]);
  }
});

test('parseConfig rejects a "__proto__" key from JSON in every other record too (env, headers, tool overrides), naming it', (t) => {
  const cases: Array<[string, string]> = [
    ['{"command": "node", "env": {"__proto__": "x"}}', "servers.a.env.__proto__"],
    ['{"url": "http://127.0.0.1:1/mcp", "headers": {"__proto__": "x"}}', "servers.a.headers.__proto__"],
    ['{"command": "node", "tools": {"overrides": {"__proto__": {"alias": "x"}}}}', "servers.a.tools.overrides.__proto__"],
  ];
  for (const [server, path] of cases) assertNamesPaths(t, configError(t, JSON.parse(`{"servers": {"a": ${server}}}`)), [path]);
});

test("parseConfig keeps servers named like Object.prototype's members", (t) => {
  const config = parseConfig({ servers: { constructor: { command: "node" }, toString: { command: "node" }, hasOwnProperty: { url: "http://127.0.0.1:1/mcp" } } });
  t.deepEqual(Object.keys(config.servers), ["constructor", "toString", "hasOwnProperty"]);
  const server = (name: string) => config.servers[name]!;
  t.is(server("constructor").name, "constructor");
  t.is(server("toString").prefix, "toString");
  t.is(server("hasOwnProperty").transport, "http");
});

// ---------------------------------------------------------------- prompts and resources blocks

test("parseConfig keeps the prompts and resources blocks as given", (t) => {
  const server = parseConfig({
    servers: {
      a: {
        command: "node",
        prompts: { include: ["greet", "review"], exclude: ["review"], overrides: { greet: { alias: "hello", description: "Says hello." } } },
        resources: { include: ["file:///readme", "db://{table}"], exclude: ["db://{table}"] },
      },
    },
  }).servers.a!;
  t.deepEqual(server.prompts, { include: ["greet", "review"], exclude: ["review"], overrides: { greet: { alias: "hello", description: "Says hello." } } });
  t.deepEqual(server.resources, { include: ["file:///readme", "db://{table}"], exclude: ["db://{table}"] });
});

test("parseConfig rejects unknown keys and bad values in the prompts and resources blocks with CONFIG_INVALID naming each path", (t) => {
  const error = configError(t, {
    servers: {
      a: { command: "node", prompts: { include: [""], overrides: { greet: { alias: "", title: "x" } }, filter: [] } },
      b: { command: "node", resources: { exclude: "file:///x", overrides: {} } },
    },
  });
  assertNamesPaths(t, error, [
    "servers.a.prompts.include.0",
    "servers.a.prompts.overrides.greet.alias",
    "servers.a.prompts.overrides.greet.title: unknown key",
    "servers.a.prompts.filter: unknown key",
    "servers.b.resources.exclude",
    "servers.b.resources.overrides: unknown key",
  ]);
});

test('parseConfig rejects a "__proto__" prompt override from JSON, naming it', (t) => {
  const input = JSON.parse('{"servers": {"a": {"command": "node", "prompts": {"overrides": {"__proto__": {"alias": "x"}}}}}}');
  assertNamesPaths(t, configError(t, input), ["servers.a.prompts.overrides.__proto__"]);
});

test("prompt aliases are checked as tool aliases are: two servers' colliding aliases are valid (the catalog names the later one <server>__<prompt>), and a prompt may share a tool's alias", (t) => {
  const config = parseConfig({
    servers: {
      a: { command: "node", tools: { overrides: { t: { alias: "run" } } }, prompts: { overrides: { p: { alias: "run" } } } },
      b: { command: "node", tools: { overrides: { u: { alias: "run" } } }, prompts: { overrides: { q: { alias: "run" } } } },
    },
  });
  t.is(config.servers.a!.prompts.overrides!.p!.alias, "run");
  t.is(config.servers.b!.prompts.overrides!.q!.alias, "run");
});

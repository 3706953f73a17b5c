/**
 * A worker that never gets as far as running its connection: its module throws while loading (a
 * broken install), never finishes loading, or starts and never says a word. piscina leaves such a
 * task queued for good, so without a bound of our own `createPool` would never resolve.
 *
 * Each test runs a copy of the built library whose worker module was replaced, imported from a
 * directory inside `dist/` (so that `node_modules` still resolves): the library itself is unchanged.
 */
import test, { type ExecutionContext } from "ava";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as Library from "../src/index.js";
import { isAlive, stdioServer, waitFor } from "./helpers/fixtures.js";

const DIST = dirname(dirname(fileURLToPath(import.meta.url)));
const CONNECT_TIMEOUT_MS = 1_500;
/** createPool must resolve well inside this, whatever the worker does. */
const BOUND_MS = 30_000;

/** A copy of the library whose worker module (the bundle) is `hostSource`; the real one stays as connection-host.real.js. */
async function brokenLibrary(t: ExecutionContext, hostSource: string): Promise<typeof Library> {
  const dir = mkdtempSync(join(DIST, "test", ".broken-host-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(join(DIST, "src"), join(dir, "src"), { recursive: true });
  cpSync(join(DIST, "workers"), join(dir, "workers"), { recursive: true });
  cpSync(join(dir, "workers", "connection-host.bundle.js"), join(dir, "workers", "connection-host.real.js"));
  writeFileSync(join(dir, "workers", "connection-host.bundle.js"), hostSource);
  return (await import(pathToFileURL(join(dir, "src", "index.js")).href)) as typeof Library;
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms))),
  ]);
}

const BROKEN_HOSTS: Array<[string, string, RegExp]> = [
  ["throws while loading", `throw new Error("connection host failed to load");\n`, /connection host failed to load/],
  ["never finishes loading", `await new Promise(() => {});\nexport default async function () {}\n`, /did not start/],
  ["starts and never says a word", `export default function () { return new Promise(() => {}); }\n`, /did not start/],
];

for (const [title, source, reason] of BROKEN_HOSTS) {
  test(`a worker that ${title}: createPool resolves, the server is unavailable and says why, close() ends it all`, async (t) => {
    const { McpPool, parseConfig } = await brokenLibrary(t, source);
    const started = Date.now();
    const pool = new McpPool(
      parseConfig({
        servers: { echo: { ...stdioServer(), connectTimeoutMs: CONNECT_TIMEOUT_MS, reconnect: { maxAttempts: 1, initialDelayMs: 50, maxDelayMs: 100, probeIntervalMs: 500 } } },
        limits: { acquireTimeoutMs: 1_000 },
      }),
    );
    t.teardown(() => pool.close());
    // A worker that never ran its host died as a worker: replaced the same way, reported the same way.
    const crashes: Array<{ error?: { message?: string } }> = [];
    pool.on("worker:crash", (event) => crashes.push(event));
    // What createPool awaits.
    await within(pool.ready(), BOUND_MS, "createPool");
    t.log(`ready() resolved after ${Date.now() - started} ms`);

    const connection = pool.stats().servers.echo!.connections[0];
    t.not(connection?.state, "ready");
    t.is(connection?.pid, undefined);
    t.true(crashes.length > 0, "worker:crash was emitted");
    t.regex(crashes[0]?.error?.message ?? "", reason);

    const error = await within(
      pool.callTool("echo__echo", { message: "hi" }).then(
        () => undefined,
        (e: unknown) => e,
      ),
      BOUND_MS,
      "callTool",
    );
    t.is((error as { code?: string } | undefined)?.code, "SERVER_UNAVAILABLE");

    // Stays unavailable, keeps retrying in the background without piling up threads or processes.
    await new Promise((resolve) => setTimeout(resolve, 2 * CONNECT_TIMEOUT_MS));
    t.not(pool.stats().servers.echo!.connections[0]!.state, "ready");
    await within(pool.close(), BOUND_MS, "close");
    t.is(pool.stats().workers.active, 0);
  });
}

test("a worker that throws while loading does not keep a healthy server from serving", async (t) => {
  // Only the first worker ever started fails: a transient start failure (out of memory, thread limit).
  const marker = join(DIST, "test", `.first-host-${process.pid}`);
  t.teardown(() => rmSync(marker, { force: true }));
  const source = `import { existsSync, writeFileSync } from "node:fs";
if (!existsSync(${JSON.stringify(marker)})) { writeFileSync(${JSON.stringify(marker)}, ""); throw new Error("transient start failure"); }
export * from "./connection-host.real.js";
export { default } from "./connection-host.real.js";
`;
  const { McpPool, parseConfig } = await brokenLibrary(t, source);
  const pool = new McpPool(parseConfig({ servers: { echo: { ...stdioServer(), connectTimeoutMs: CONNECT_TIMEOUT_MS } } }));
  t.teardown(() => pool.close());
  const crashes: Array<{ error?: { message?: string } }> = [];
  pool.on("worker:crash", (event) => crashes.push(event));
  await within(pool.ready(), BOUND_MS, "createPool");
  await waitFor(() => pool.stats().servers.echo!.connections[0]?.state === "ready", BOUND_MS);
  // Given up on at once, from piscina's report of the failed worker, not after the start deadline.
  t.deepEqual(
    crashes.map((c) => c.error?.message),
    ["worker thread failed to start: transient start failure"],
  );
  const result = await pool.callTool("echo__echo", { message: "after a failed start" }, { timeoutMs: 5_000 });
  t.like(result, { content: [{ type: "text" }] });
  const pid = pool.stats().servers.echo!.connections[0]!.pid!;
  await pool.close();
  t.false(isAlive(pid));
});

/** Processes whose command line holds `token`. */
function processesWith(token: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^[0-9]+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(token)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test("a host that speaks just as its start deadline passes is heard, not given up on, and its server does not outlive close()", async (t) => {
  // The host starts 9.3 s after `started` (a moment on the clock, not a delay after its module loaded: loading takes
  // a varying share of a busy machine), so it first speaks while the main thread is blocked (from 9 s to 10.6 s after
  // `started`, which is before the worker was even spawned): the 10 s deadline and the host's first messages
  // ("connecting", then the server's pid) fall due in the same turn of the loop.
  const started = Date.now();
  const source = `import real from "./connection-host.real.js";
export default async function (task) { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ${started + 9_300} - Date.now()))); return real(task); }
`;
  const { McpPool, parseConfig } = await brokenLibrary(t, source);
  const token = `worker-start-silent-server-${process.pid}-${Date.now()}`;
  t.teardown(() => {
    for (const pid of processesWith(token)) process.kill(pid, "SIGKILL");
  });
  // A server that never answers: the connection stays connecting, its process runs until closed.
  const pool = new McpPool(
    parseConfig({
      servers: { s: { command: "/bin/sh", args: ["-c", "while :; do sleep 1; done", token], connectTimeoutMs: 3_000, reconnect: { maxAttempts: 1, initialDelayMs: 50, maxDelayMs: 100, probeIntervalMs: 60_000 } } },
    }),
  );
  t.teardown(() => pool.close());
  const crashes: Array<{ error?: { message?: string } }> = [];
  pool.on("worker:crash", (event) => crashes.push(event));
  // Blocked in the check phase, so that the next turn of the loop starts with the due timers.
  const stall = setTimeout(() => {
    setImmediate(() => {
      while (Date.now() < started + 10_600);
    });
  }, Math.max(0, started + 9_000 - Date.now()));
  t.teardown(() => clearTimeout(stall));
  await within(pool.ready(), BOUND_MS, "ready");
  await waitFor(() => processesWith(token).length > 0, BOUND_MS);
  await within(pool.close(), BOUND_MS, "close");
  t.deepEqual(processesWith(token).filter(isAlive), [], "the server does not outlive close()");
  t.deepEqual(crashes.map((c) => c.error?.message), [], "no worker:crash: the host was heard");
});

test("a stdio server is launched while the worker still loads its host, and a worker given up on then leaves no process behind", async (t) => {
  // The host never finishes loading: the only way its server can run is the worker's entry launching it first.
  const { McpPool, parseConfig } = await brokenLibrary(t, `await new Promise(() => {});\nexport default async function () {}\n`);
  const token = `worker-start-early-server-${process.pid}-${Date.now()}`;
  t.teardown(() => {
    for (const pid of processesWith(token)) process.kill(pid, "SIGKILL");
  });
  const pool = new McpPool(
    parseConfig({
      servers: { s: { command: process.execPath, args: ["-e", "setInterval(() => {}, 1000)", token], connectTimeoutMs: CONNECT_TIMEOUT_MS, reconnect: { maxAttempts: 1, initialDelayMs: 50, maxDelayMs: 100, probeIntervalMs: 60_000 } } },
    }),
  );
  t.teardown(() => pool.close());
  await waitFor(() => processesWith(token).length > 0, BOUND_MS);
  const [server] = processesWith(token);
  // Known to the main thread (reported by the entry, before any host could): reaped when the worker goes.
  await waitFor(() => pool.stats().servers.s!.connections[0]?.pid === server, BOUND_MS);
  await within(pool.ready(), BOUND_MS, "ready");
  await waitFor(() => !isAlive(server!), BOUND_MS);
  await within(pool.close(), BOUND_MS, "close");
  t.deepEqual(processesWith(token).filter(isAlive), [], "no server outlives the worker that launched it");
});

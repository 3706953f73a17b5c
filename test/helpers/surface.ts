/**
 * Helpers for the client-surface suites (surface-resources, surface-prompts, surface-subscriptions):
 * the fixture servers of test/fixtures (both eras, stdio and Streamable HTTP), each with its own
 * FIXTURE_EVENTS file, killed and restarted the way the fault suites do it, and bounded waits on pool
 * events.
 */
import type { ExecutionContext } from "ava";
import { rmSync } from "node:fs";
import { createPool, type McpPool, type PoolConfigInput, type ServerConfigInput } from "../../src/index.js";
import { FIXTURE_ERAS, readEvents, startHttpFixture, stdioServer, tmpFile, waitFor, within, type FixtureEra, type HttpFixture } from "./fixtures.js";
import { connectionOf, server } from "./faults.js";

export const SURFACE_TRANSPORTS = ["stdio", "http"] as const;
export type SurfaceTransport = (typeof SURFACE_TRANSPORTS)[number];

/** Every era × transport the fixtures serve the surface on (SSE is the legacy era's alone and not covered here). */
export const SURFACE_COMBOS: Array<{ era: FixtureEra; transport: SurfaceTransport }> = FIXTURE_ERAS.flatMap((era) =>
  SURFACE_TRANSPORTS.map((transport) => ({ era, transport })),
);

/** The bound for one await on the pool in these suites. */
export const BOUND_MS = 20_000;

/** `promise` within BOUND_MS, or a rejection naming `what`. */
export function bounded<T>(what: string, promise: Promise<T>): Promise<T> {
  return within(BOUND_MS, what, promise);
}

/**
 * A pool closed at teardown, once `slot` lets the test in; for session-scoped servers, which have no
 * shared connection for `openReadyPool` to wait for (createPool resolves once their listing is done).
 */
export async function sessionPool(t: ExecutionContext, input: PoolConfigInput, slot: (t: ExecutionContext) => Promise<void>): Promise<McpPool> {
  await slot(t);
  const pool = await createPool(input);
  t.teardown(() => pool.close());
  return pool;
}

/** One fixture server for a test: its pool config and its FIXTURE_EVENTS file. */
export interface Fixture {
  era: FixtureEra;
  transport: SurfaceTransport;
  /** The server's config (fault-test defaults: fast reopening, no keepalive), plus what the test added. */
  config: ServerConfigInput;
  events: string;
  /** HTTP only: the running server process. */
  http?: HttpFixture;
  /** The fixture's command-line arguments. */
  args: string[];
}

/**
 * Starts (HTTP) or describes (stdio) the fixture of `era` over `transport`, with `args` (e.g.
 * `["--page-size", "3"]`) and `extra` server options. Everything it starts ends at teardown.
 */
export async function fixture(
  t: ExecutionContext,
  era: FixtureEra,
  transport: SurfaceTransport,
  args: string[] = [],
  extra: Partial<ServerConfigInput> = {},
): Promise<Fixture> {
  const events = tmpFile(`surface-${era}-${transport}`);
  t.teardown(() => rmSync(events, { force: true }));
  const env = { FIXTURE_EVENTS: events };
  if (transport === "stdio") {
    return { era, transport, events, args, config: server({ ...stdioServer(args, env, era), ...extra } as ServerConfigInput) };
  }
  const http = await startHttpFixture("http", args, env, era);
  t.teardown(() => http.close());
  return { era, transport, events, args, http, config: server({ url: http.url, ...extra } as ServerConfigInput) };
}

/**
 * Kills the server of `name` with SIGKILL. Over stdio, the process of its (first) connection, which the
 * pool reopens: resolves once the connection is ready again on a new process. Over HTTP, the server
 * process, then starts it again on the same port (its state, like a restarted deployment's, is fresh):
 * resolves once a call through the pool is served by the new process (legacy era: after the pool's reopen
 * on the 404 for its old session; 2026-07-28: there is no session to lose, the connection stays).
 */
export async function killServer(t: ExecutionContext, pool: McpPool, name: string, f: Fixture): Promise<void> {
  if (f.transport === "stdio") {
    const before = connectionOf(pool, name).pid;
    if (before === undefined) throw new Error(`server ${name} has no pid`);
    process.kill(before, "SIGKILL");
    await waitFor(() => {
      const c = connectionOf(pool, name);
      return c.state === "ready" && c.pid !== undefined && c.pid !== before;
    }, 30_000);
    return;
  }
  const old = f.http!;
  process.kill(old.pid, "SIGKILL");
  await old.close();
  const again = await startHttpFixture("http", ["--port", new URL(old.url).port, ...f.args], { FIXTURE_EVENTS: f.events }, f.era);
  t.teardown(() => again.close());
  f.http = again;
  await waitFor(async () => {
    try {
      const result = await pool.callTool(`${name}__pid`, {}, { timeoutMs: 5_000 });
      return (result.content as Array<{ text: string }>)[0]!.text === String(again.pid);
    } catch {
      return false;
    }
  }, 30_000, 200);
  await waitFor(() => connectionOf(pool, name).state === "ready", 30_000);
}

/** The `start` events of a fixture's event file (one per server process). */
export function startsOf(events: string): Array<{ pid: number }> {
  return readEvents(events).filter((e) => e.event === "start");
}

/** Every emission of pool event `name` from now on, in order. */
export function collect<T = Record<string, unknown>>(pool: McpPool, name: string): T[] {
  const seen: T[] = [];
  pool.on(name, (event: T) => void seen.push(event));
  return seen;
}

/** Waits (bounded) until `list` holds at least `n` entries. */
export function atLeast(list: unknown[], n: number, what: string): Promise<void> {
  return within(BOUND_MS, what, waitFor(() => list.length >= n, BOUND_MS, 10));
}

/** A pool event's payload as the surface suites read it. */
export interface SurfaceEvent {
  server?: string;
  uri?: string;
  sessionId?: string;
  version?: number;
}

/** The text of the first content of a ReadResourceResult (or "" when it is a blob). */
export function firstText(result: { contents: unknown[] }): string {
  const first = result.contents[0] as { text?: string } | undefined;
  return first?.text ?? "";
}

/** A plain JSON copy (drops members set to undefined), to compare with what catalog.ts defines. */
export function plain<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Gives a notification that must not come time to arrive: a round trip on the server's connection, then a pause. */
export async function quietPeriod(pool: McpPool, tool: string, options: { sessionId?: string } = {}): Promise<void> {
  await pool.callTool(tool, { message: "quiet" }, { timeoutMs: BOUND_MS, ...options });
  await new Promise((resolve) => setTimeout(resolve, 400));
}

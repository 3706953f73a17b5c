/**
 * Helpers shared by the fault-tolerance suites (faults-server, faults-worker, faults-http).
 */
import type { ExecutionContext } from "ava";
import { createPool, McpPoolError, type McpPool, type PoolConfigInput, type ServerConfigInput } from "../../src/index.js";
import { waitFor } from "./fixtures.js";

/** Fast reopening: the defaults suit production, not a test budget. */
export const FAST_RECONNECT = { maxAttempts: 3, initialDelayMs: 20, maxDelayMs: 100, probeIntervalMs: 300 };

/**
 * Server options for fault tests: fast reopening, a connect deadline that survives a loaded machine, and
 * no keepalive unless a test asks for it (pings with short timeouts would declare a slow-but-alive server hung).
 */
export function server(config: ServerConfigInput): ServerConfigInput {
  return { reconnect: FAST_RECONNECT, connectTimeoutMs: 30_000, keepalive: { intervalMs: 0 }, ...config };
}

/** How a call ended, as a word: "resolved", or its McpPoolError code. */
export async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return error instanceof McpPoolError ? error.code : `not an McpPoolError: ${String(error)}`;
  }
}

export type Settled = { ok: true; text: string } | { ok: false; code: string };

/** Settles a call into a plain value, so tests can check the outcome and never hang on it. */
export function settle(call: Promise<{ content: unknown }>): Promise<Settled> {
  return call.then(
    (result) => ({ ok: true as const, text: textOf(result) }),
    (error: unknown) => ({ ok: false as const, code: error instanceof McpPoolError ? error.code : `not an McpPoolError: ${String(error)}` }),
  );
}

export function textOf(result: { content: unknown }): string {
  return (result.content as Array<{ text: string }>)[0]!.text;
}

export function connectionOf(pool: McpPool, serverName: string) {
  const conn = pool.stats().servers[serverName]!.connections[0];
  if (!conn) throw new Error(`server ${serverName} has no connection`);
  return conn;
}

/**
 * A gate letting at most `max` tests of a file hold pools at once: each spawns servers and workers, and on
 * a 2-core machine shared with other suites, all of them at once turn timing into noise.
 */
export function testSlots(max: number): (t: ExecutionContext) => Promise<void> {
  let running = 0;
  const queue: Array<() => void> = [];
  return async (t) => {
    if (running >= max) await new Promise<void>((resolve) => queue.push(resolve));
    running++;
    t.teardown(() => {
      running--;
      queue.shift()?.();
    });
  };
}

/**
 * A pool whose every server is ready (not merely past its first attempt) and whose stdio connections have
 * reported their server's pid, closed at teardown. `slot`, if given, is waited for first (see testSlots).
 */
export async function openReadyPool(t: ExecutionContext, input: PoolConfigInput, slot?: (t: ExecutionContext) => Promise<void>): Promise<McpPool> {
  await slot?.(t);
  const pool = await createPool(input);
  t.teardown(() => pool.close());
  await waitFor(
    () =>
      Object.entries(pool.stats().servers).every(
        ([name, s]) => s.state === "ready" && (pool.config.servers[name]!.transport !== "stdio" || s.connections[0]?.pid !== undefined),
      ),
    30_000,
  );
  return pool;
}

/**
 * Servers that keep no connection open (session-scoped, or shared with `connections.min` 0) list their
 * tools through a discovery connection (issue 12, item 23): a failed discovery is retried with the
 * server's reconnect backoff, and waiting for a worker slot is not a connect attempt.
 */
import test from "ava";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createPool, type ServerConfigInput } from "../src/index.js";
import { FAST_RECONNECT, settle } from "./helpers/faults.js";
import { tmpFile, waitFor } from "./helpers/fixtures.js";

const HAZARD_SERVER = fileURLToPath(new URL("./fixtures/hazard-server.js", import.meta.url));

function hazard(extra: Partial<ServerConfigInput> = {}, args: string[] = []): ServerConfigInput {
  return { command: process.execPath, args: [HAZARD_SERVER, ...args], keepalive: { intervalMs: 0 }, stderr: "ignore", ...extra };
}

for (const kind of ["session", "min0"] as const) {
  const what = kind === "session" ? "a session-scoped server" : "a shared server with connections.min 0";
  test.serial(`${what} whose first discovery fails lists its tools later and becomes callable`, async (t) => {
    const marker = tmpFile("discovery-first-start");
    t.teardown(() => rmSync(marker, { force: true }));
    const extra: Partial<ServerConfigInput> = kind === "session" ? { scope: "session" } : { connections: { min: 0, max: 1 } };
    const pool = await createPool({ servers: { h: hazard({ ...extra, reconnect: FAST_RECONNECT, connectTimeoutMs: 30_000 }, ["--fail-first-start", marker]) } });
    t.teardown(() => pool.close());
    // createPool resolved after the first attempt, which failed (the server exited at start).
    await waitFor(async () => (await pool.listTools()).some((tool) => tool.name === "h__echo"), 20_000);
    t.is(pool.stats().servers.h!.tools, 3);
    const call = kind === "session" ? pool.session("s1").callTool("h__echo", { message: "later" }) : pool.callTool("h__echo", { message: "later" });
    t.deepEqual(await settle(call), { ok: true, text: "later" });
  });
}

test.serial("many lazy servers over a small maxWorkers all list their tools, however long they wait for a worker", async (t) => {
  const servers: Record<string, ServerConfigInput> = {};
  // Each connect has its own deadline, ample for one; twelve discoveries through two workers take longer than one.
  for (let i = 0; i < 12; i++) servers[`s${i}`] = hazard({ scope: i % 2 === 0 ? "session" : "shared", connections: i % 2 === 0 ? { min: 0 } : { min: 0, max: 1 }, connectTimeoutMs: 4_000, reconnect: FAST_RECONNECT });
  const pool = await createPool({ servers, limits: { maxWorkers: 2 } });
  t.teardown(() => pool.close());
  const unlisted = () => Object.entries(pool.stats().servers).filter(([, s]) => s.tools !== 3).map(([name]) => name);
  await waitFor(() => unlisted().length === 0, 40_000).catch(() => {});
  t.deepEqual(unlisted(), []);
  t.deepEqual(await settle(pool.callTool("s1__echo", { message: "odd" })), { ok: true, text: "odd" });
  t.deepEqual(await settle(pool.session("x").callTool("s10__echo", { message: "even" })), { ok: true, text: "even" });
});

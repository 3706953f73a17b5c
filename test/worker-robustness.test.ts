/**
 * What a hostile or unlucky server does to a connection's worker (issue 12, items 4, 8, 10, 20, 21):
 * close() meets a connection still connecting; a flood of notifications; list_changed without end;
 * schemas that cannot be compiled or change under the same `$id`.
 */
import test, { type ExecutionContext } from "ava";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessagePort } from "node:worker_threads";
import { createPool, McpPool, parseConfig, type PoolConfigInput } from "../src/index.js";
import { isAlive, tmpFile, waitFor } from "./helpers/fixtures.js";
import { server, settle, testSlots, textOf } from "./helpers/faults.js";

const slot = testSlots(2);

const HOSTILE_SERVER = fileURLToPath(new URL("./fixtures/hostile-server.js", import.meta.url));

function hostile(...args: string[]) {
  return server({ command: process.execPath, args: [HOSTILE_SERVER, ...args] });
}

/** Well under the worker's close grace (5 s), which is what a close that hangs ends up waiting. */
const QUICK_CLOSE_MS = 3_000;

/** Starts a pool without waiting for it; closed at teardown. */
async function startPool(t: ExecutionContext, input: PoolConfigInput): Promise<McpPool> {
  await slot(t);
  const pool = new McpPool(parseConfig(input));
  t.teardown(() => pool.close());
  return pool;
}

async function timedClose(pool: McpPool): Promise<number> {
  const started = Date.now();
  await pool.close();
  return Date.now() - started;
}

/** Whether `promise` settles within `ms` (never rejects). */
function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => true, () => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

// ---- item 4: close() during connect -----------------------------------------------------------

// While the stall file exists, the server answers initialize only once its stdin has ended: close()
// during connect ends stdin, the answer comes anyway, and the client's next send (notifications/initialized)
// meets an ended stdin. The server keeps running until it is signalled, as many servers do.
function stallFile(t: ExecutionContext): string {
  const file = tmpFile("stall-initialize");
  t.teardown(() => {
    rmSync(file, { force: true });
    rmSync(`${file}.asked`, { force: true });
  });
  return file;
}

/** Resolves once the server has the initialize request and holds back its answer. */
function initializeStalled(file: string): Promise<void> {
  return waitFor(() => existsSync(`${file}.asked`), 30_000, 5);
}

test("close() right after new McpPool() settles quickly, ready() settles, and no server process is left", async (t) => {
  const stall = stallFile(t);
  writeFileSync(stall, "");
  const pool = await startPool(t, { servers: { a: hostile("--stall-initialize-if", stall) } });
  const ready = pool.ready();
  await initializeStalled(stall);
  const pid = pool.stats().servers.a!.connections[0]!.pid!;
  t.is(pool.stats().servers.a!.connections[0]!.state, "connecting");

  const took = await timedClose(pool);
  t.true(took < QUICK_CLOSE_MS, `close() took ${took} ms`);
  t.true(await settlesWithin(ready, 1_000), "ready() settles once the pool is closed");
  t.false(isAlive(pid), "the server is gone");
  t.is(pool.stats().workers.active, 0);
});

test("close() while a crashed server is being reopened settles quickly and leaves no server process", async (t) => {
  const stall = stallFile(t);
  await slot(t);
  const pool = await createPool({ servers: { a: hostile("--stall-initialize-if", stall) } });
  t.teardown(() => pool.close());
  await waitFor(() => pool.stats().servers.a!.connections[0]?.pid !== undefined, 30_000);
  const first = pool.stats().servers.a!.connections[0]!.pid!;
  writeFileSync(stall, "");
  t.like(await settle(pool.callTool("a__crash", {})), { ok: false });
  await initializeStalled(stall);
  const second = pool.stats().servers.a!.connections[0]!.pid!;
  t.not(pool.stats().servers.a!.connections[0]!.state, "ready");

  const took = await timedClose(pool);
  t.true(took < QUICK_CLOSE_MS, `close() took ${took} ms`);
  t.false(isAlive(first));
  t.false(isAlive(second), "the server being reopened is gone");
  t.is(pool.stats().workers.active, 0);
});

// ---- item 10: list_changed without end --------------------------------------------------------

// Each listing carries 4 tools whose input and output schemas are new and 100 KB each: a validator that
// keeps what it compiled (or the schemas it compiled) across listings fills a 16 MB worker in about ten.
const CYCLES = 30;
const CHURN = { tools: 4, props: 4, padKb: 100 };
/** The `gen_*` tools called each cycle: their inputSchemas are compiled for the calls. */
const CALLED = 2;

/** Waits until the pool lists generation `gen` of the hostile server's `gen_*` tools, or its worker died. */
async function generationListed(pool: McpPool, gen: string): Promise<void> {
  await waitFor(
    async () => pool.stats().crashes.worker > 0 || (await pool.listTools()).some((x) => x.name === "h__gen_0" && x.tool.description === `generation ${gen}`),
    30_000,
  );
}

test("list_changed after list_changed, each with schemas never seen before, does not exhaust the worker's heap", async (t) => {
  await slot(t);
  const pool = await createPool({ servers: { h: hostile() }, limits: { workerHeapMb: 16 } });
  t.teardown(() => pool.close());
  for (let cycle = 1; cycle <= CYCLES; cycle++) {
    const gen = textOf(await pool.callTool("h__churn", CHURN));
    await generationListed(pool, gen);
    if (pool.stats().crashes.worker > 0) break;
    // Calls check their arguments against the new inputSchemas: those are compiled too.
    for (let i = 0; i < CALLED; i++) t.is(textOf(await pool.callTool(`h__gen_${i}`, {})), `gen_${i} of generation ${gen}`);
  }
  t.is(pool.stats().crashes.worker, 0, "the worker never died");
  t.is(textOf(await pool.callTool("h__echo", { message: "still here" })), "still here");
});

// ---- item 21: a schema that changed under the same $id ----------------------------------------

function typedSchema(type: string): string {
  return JSON.stringify({ $id: "https://example.com/schemas/typed", type: "object", properties: { n: { type } }, required: ["n"] });
}

async function typedListedAs(pool: McpPool, type: string): Promise<void> {
  await waitFor(async () => {
    const typed = (await pool.listTools()).find((x) => x.name === "h__typed");
    return (typed?.tool.inputSchema.properties?.n as { type?: string } | undefined)?.type === type;
  }, 30_000);
}

test("a tool whose inputSchema changed under the same $id is checked against its new schema", async (t) => {
  await slot(t);
  const pool = await createPool({ servers: { h: hostile() } });
  t.teardown(() => pool.close());
  await pool.callTool("h__set_schema", { schema: typedSchema("number") });
  await typedListedAs(pool, "number");
  t.is(textOf(await pool.callTool("h__typed", { n: 1 })), "typed ok");
  t.deepEqual(await settle(pool.callTool("h__typed", { n: "one" })), { ok: false, code: "INVALID_ARGUMENTS" });

  await pool.callTool("h__set_schema", { schema: typedSchema("string") });
  await typedListedAs(pool, "string");
  t.is(textOf(await pool.callTool("h__typed", { n: "one" })), "typed ok", "valid under the new schema");
  t.deepEqual(await settle(pool.callTool("h__typed", { n: 1 })), { ok: false, code: "INVALID_ARGUMENTS" }, "valid only under the old one");
});

// ---- item 20 (outputSchema): a schema no validator can compile ---------------------------------

test("a tool whose outputSchema cannot be compiled leaves its server and its other tools usable", async (t) => {
  await slot(t);
  const pool = await createPool({ servers: { h: hostile("--bad-output-schema") } });
  t.teardown(() => pool.close());
  t.is(pool.stats().servers.h!.state, "ready");
  const names = (await pool.listTools()).map((x) => x.name);
  t.true(names.includes("h__echo"));
  t.true(names.includes("h__bad_output"), "the tool is listed");
  t.is(textOf(await pool.callTool("h__echo", { message: "hi" })), "hi");
  // Its result is returned as the server sent it, as for every tool (the pool does not check results against outputSchema).
  t.is(textOf(await pool.callTool("h__bad_output", {})), "bad_output ok");
});

// ---- item 8: a flood of progress notifications ------------------------------------------------

// Messages the main thread receives from workers on their ports, the cost a flood puts on the host: counted
// by every 'message' listener added with on(), from module load on (before any pool of this file exists).
let portMessages = 0;
const portOn = MessagePort.prototype.on;
MessagePort.prototype.on = function (this: MessagePort, event: string, listener: (...args: unknown[]) => void) {
  if (event !== "message") return portOn.call(this, event, listener);
  return portOn.call(this, event, function (this: unknown, ...args: unknown[]) {
    portMessages++;
    return listener.apply(this, args);
  });
} as typeof portOn;

const FLOOD = 50_000;

test("a flood of progress notifications reaches the caller coalesced, and not at all when it did not ask for progress", async (t) => {
  await slot(t);
  const pool = await createPool({ servers: { h: hostile() } });
  t.teardown(() => pool.close());

  const seen: number[] = [];
  let before = portMessages;
  const asked = await pool.callTool("h__flood", { count: FLOOD }, { onProgress: (p) => seen.push(p.progress) });
  t.is(textOf(asked), `flooded ${FLOOD}`);
  const askedMessages = portMessages - before;
  t.true(seen.length > 0 && askedMessages > 0, "progress was delivered (and the port counter counts)");
  t.true(seen.length < FLOOD / 10, `onProgress ran ${seen.length} times for ${FLOOD} notifications`);
  t.is(seen.at(-1), FLOOD, "the latest progress comes before the result");
  t.deepEqual(seen, [...seen].sort((a, b) => a - b), "in order");

  before = portMessages;
  const unasked = await pool.callTool("h__flood", { count: FLOOD });
  t.is(textOf(unasked), `flooded ${FLOOD}`);
  const unaskedMessages = portMessages - before;
  t.log(`onProgress ${seen.length}, port messages ${askedMessages} (asked) and ${unaskedMessages} (not asked)`);
  t.true(unaskedMessages < 10, `the main thread got ${unaskedMessages} messages for a call that did not ask for progress`);
});

/**
 * A host program for pool-close.test.ts: creates a pool over the fixture server, makes a call
 * (or, with `busy`, calls that time out, abort, report progress and use a session), closes the
 * pool, and then does nothing: the process must exit by itself (no process.exit here). It prints
 * the protocol revision in use, any outcomes, then "closed".
 *
 *   node dist/test/helpers/close-exit.js [simple|busy] [legacy|modern]
 *
 * The second argument is the fixture's protocol era (default legacy).
 */
import { createPool } from "../../src/index.js";
import { FIXTURE_ERAS, stdioServer, type FixtureEra } from "./fixtures.js";

const busy = process.argv[2] === "busy";
const era = (process.argv[3] ?? "legacy") as FixtureEra;
if (!FIXTURE_ERAS.includes(era)) throw new Error(`unknown era: ${era}`);
const pool = await createPool({ servers: { fixture: stdioServer([], undefined, era) } });
const result = await pool.callTool("fixture__echo", { message: "hi" });
if (result.content[0]?.type !== "text" || result.content[0].text !== "hi") throw new Error("unexpected echo result");
process.stdout.write(`protocol ${pool.stats().servers.fixture!.protocolVersion}\n`);

if (busy) {
  const settled = await Promise.allSettled([
    pool.callTool("fixture__slow", { ms: 10_000 }, { timeoutMs: 200 }),
    pool.callTool("fixture__slow", { ms: 10_000 }, { signal: AbortSignal.timeout(200) }),
    pool.callTool("fixture__progress", { steps: 2, intervalMs: 0 }, { onProgress: () => {} }),
    pool.session("s1").callTool("fixture__echo", { message: "session" }),
    pool.callTool("fixture__no_such_tool", {}),
  ]);
  const outcomes = settled.map((s) => (s.status === "fulfilled" ? "ok" : (s.reason as { code?: string }).code));
  process.stdout.write(`outcomes ${outcomes.join(",")}\n`);
}

await pool.close();
process.stdout.write("closed\n");

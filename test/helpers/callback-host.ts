/**
 * A host program for input-validation.test.ts: user callbacks that throw or reject (onProgress,
 * pool event listeners) while calls run. A plain host (no handlers of its own) must survive them
 * and every call must end as if they had not thrown. Prints one line per step, then the number of
 * McpPoolWarning process warnings, then "closed", and exits by itself.
 *
 *   node dist/test/helpers/callback-host.js [legacy|modern]
 *
 * The argument is the fixture's protocol era (default legacy); the first line printed is the
 * protocol revision the pool speaks with it.
 */
import { createPool, McpPoolError } from "../../src/index.js";
import { FIXTURE_ERAS, stdioServer, type FixtureEra } from "./fixtures.js";

const era = (process.argv[2] ?? "legacy") as FixtureEra;
if (!FIXTURE_ERAS.includes(era)) throw new Error(`unknown era: ${era}`);

let warnings = 0;
process.on("warning", (warning) => {
  if (warning.name === "McpPoolWarning") warnings++;
});

function describe(error: unknown): string {
  return error instanceof McpPoolError ? error.code : `untyped ${String(error)}`;
}

async function step(label: string, run: () => Promise<string>): Promise<void> {
  let line: string;
  try {
    line = await run();
  } catch (error) {
    line = describe(error);
  }
  process.stdout.write(`${label} ${line}\n`);
}

const pool = await createPool({ servers: { fixture: stdioServer([], undefined, era) } });
process.stdout.write(`protocol ${pool.stats().servers.fixture!.protocolVersion}\n`);

await step("progress-throws", async () => {
  let seen = 0;
  const result = await pool.callTool("fixture__progress", { steps: 3, intervalMs: 5 }, {
    onProgress: () => {
      seen++;
      throw new Error("onProgress failed");
    },
  });
  return `${result.content[0]?.type === "text" ? result.content[0].text : "?"} ${seen}`;
});

await step("progress-rejects", async () => {
  let seen = 0;
  const result = await pool.callTool("fixture__progress", { steps: 3, intervalMs: 5 }, {
    onProgress: async () => {
      seen++;
      throw new Error("async onProgress failed");
    },
  });
  return `${result.content[0]?.type === "text" ? result.content[0].text : "?"} ${seen}`;
});

pool.on("session:open", () => {
  throw new Error("session:open listener failed");
});
await step("session-open-throws", async () => {
  const result = await pool.session("a").callTool("fixture__echo", { message: "hi" });
  return result.content[0]?.type === "text" ? result.content[0].text : "?";
});

pool.on("connection:lost", () => {
  throw new Error("connection:lost listener failed");
});
pool.on("connection:ready", async () => {
  throw new Error("connection:ready listener rejected");
});
await step("lost-throws", async () => {
  await pool.callTool("fixture__crash", {});
  return "resolved";
});
await step("after-loss", async () => {
  await pool.callTool("fixture__echo", { message: "again" }, { timeoutMs: 20_000 });
  return "ok";
});

// Let the warnings of the last step's rejections arrive (they are emitted on a later tick).
await new Promise((resolve) => setTimeout(resolve, 50));
process.stdout.write(`warnings ${warnings}\n`);
await pool.close();
process.stdout.write("closed\n");

/**
 * `npm start`: a pool over the MCP server bundled in this repo (test/fixtures/server.ts, over stdio),
 * a few tool calls with timing, one elicitation answered by a handler, a kill -9 of the server mid-run and the pool's recovery, stats, close.
 */
import { fileURLToPath } from "node:url";
import { createPool, McpPoolError } from "../src/index.js";

const SERVER = fileURLToPath(new URL("../test/fixtures/server.js", import.meta.url));

function ms(since: number): string {
  return `${(performance.now() - since).toFixed(1)} ms`;
}

async function main(): Promise<void> {
  let t = performance.now();
  const pool = await createPool({
    servers: {
      example: { command: process.execPath, args: [SERVER, "stdio"], stderr: "ignore" },
    },
    limits: { maxWorkers: 4 },
  }, {
    // A server that asks "which account?" mid-call reaches this handler, on the main thread.
    onElicitation: (params, ctx) => {
      console.log(`  ${ctx.server} asks (during ${ctx.tool}): ${params.message}`);
      return { action: "accept", content: { account: "acme" } };
    },
  });
  console.log(`pool ready in ${ms(t)}`);
  pool.on("connection:lost", (e) => console.log(`  event connection:lost   ${e.connectionId} (pid ${e.pid ?? "?"})`));
  pool.on("connection:ready", (e) => console.log(`  event connection:ready  ${e.connectionId} (pid ${e.pid ?? "?"})`));

  try {
    const tools = await pool.listTools();
    console.log(`\n${tools.length} tools: ${tools.slice(0, 8).map((x) => x.name).join(", ")}, ...`);

    console.log("\ncalls:");
    for (const [name, args] of [
      ["example__echo", { message: "hello from the pool" }],
      ["example__increment", {}],
      ["example__huge", { bytes: 100_000 }],
    ] as const) {
      t = performance.now();
      const result = await pool.callTool(name, args);
      const first = result.content[0];
      const text = first?.type === "text" ? first.text : JSON.stringify(first);
      console.log(`  ${name.padEnd(20)} ${ms(t).padStart(9)}  → ${text.length > 40 ? `${text.length} chars` : text}`);
    }

    const asked = await pool.callTool("example__ask", { kind: "elicitation", message: "which account?" });
    console.log(`  example__ask → ${asked.content[0]?.type === "text" ? asked.content[0].text : "?"}`);

    t = performance.now();
    await Promise.all(Array.from({ length: 500 }, (_, i) => pool.callTool("example__echo", { message: `m${i}` })));
    console.log(`  500 concurrent echo calls in ${ms(t)}`);

    try {
      await pool.callTool("example__slow", { ms: 5_000 }, { timeoutMs: 200 });
    } catch (error) {
      if (error instanceof McpPoolError) console.log(`  slow call with a 200 ms deadline → ${error.code}`);
    }

    const pid = pool.stats().servers.example!.connections[0]!.pid!;
    console.log(`\nkill -9 of the server (pid ${pid}):`);
    const killedAt = performance.now();
    process.kill(pid, "SIGKILL");
    // Bounded: a server that never comes back ends the demo with an error instead of a loop.
    const giveUpAt = killedAt + 30_000;
    for (;;) {
      try {
        await pool.callTool("example__echo", { message: "are you back?" }, { timeoutMs: 5_000 });
        break;
      } catch (error) {
        if (!(error instanceof McpPoolError)) throw error;
        console.log(`  call during recovery → ${error.code}`);
        if (performance.now() > giveUpAt) throw new Error("the server did not come back within 30 s", { cause: error });
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    const newPid = pool.stats().servers.example!.connections[0]!.pid;
    console.log(`  recovered: next successful call ${ms(killedAt)} after the kill (new pid ${newPid})`);

    console.log("\nstats():");
    console.log(JSON.stringify(pool.stats(), null, 2));
  } finally {
    t = performance.now();
    await pool.close();
    console.log(`\nclosed in ${ms(t)}: no worker thread or server process left`);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});

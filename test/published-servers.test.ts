/**
 * The pool against a published MCP server, not one of ours: `@modelcontextprotocol/server-everything`
 * (the reference server, v1 SDK, legacy era) over stdio, with the default `protocol: "auto"`: its
 * `server/discover` probe is refused and the handshake follows; tools are listed, called, with progress.
 */
import test from "ava";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Progress } from "@modelcontextprotocol/client";
import { testPool } from "./helpers/pools.js";

const require = createRequire(import.meta.url);
const EVERYTHING = join(dirname(require.resolve("@modelcontextprotocol/server-everything/package.json")), "dist", "index.js");
const everything = { command: process.execPath, args: [EVERYTHING, "stdio"], stderr: "ignore" as const };

test("server-everything over stdio: probed, then spoken to in the legacy era; tools listed and called, with progress", async (t) => {
  const pool = await testPool(t, { servers: { e: everything } });
  t.is(pool.stats().servers.e!.state, "ready");
  t.is(pool.stats().servers.e!.protocolVersion, "2025-11-25");
  t.like(pool.serverInfo("e"), { serverInfo: { name: "mcp-servers/everything" } });
  const names = (await pool.listTools()).map((tool) => tool.name);
  t.true(names.includes("e__echo") && names.includes("e__get-sum"), names.join(", "));
  t.deepEqual((await pool.callTool("e__echo", { message: "hi" }, { timeoutMs: 10_000 })).content, [{ type: "text", text: "Echo: hi" }]);
  const progress: Progress[] = [];
  const long = await pool.callTool("e__trigger-long-running-operation", { duration: 1, steps: 3 }, { timeoutMs: 20_000, onProgress: (p) => progress.push(p) });
  t.false(long.isError === true);
  t.true(progress.length >= 1, `${progress.length} progress notifications`);
});

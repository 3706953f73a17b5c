/**
 * Every error code the pool can raise, pinned to a real way of producing it (one table row each),
 * and the list of codes pinned to CONTRACT.md.
 */
import test, { type ExecutionContext } from "ava";
// The package entry (dist/index.js), as users import it.
import { createPool, ERROR_CODES, isMcpPoolError, McpPool, McpPoolError, type ErrorCode, type PoolConfigInput } from "../index.js";
import { sharedPool, testPool } from "./helpers/pools.js";
import { stdioServer } from "./helpers/fixtures.js";

/** The codes exactly as CONTRACT.md lists them ("Calling"), in order. */
const CONTRACT_CODES = [
  "CONFIG_INVALID",
  "TOOL_NOT_FOUND",
  "INVALID_ARGUMENTS",
  "SERVER_UNAVAILABLE",
  "CONNECTION_LOST",
  "TIMEOUT",
  "ABORTED",
  "POOL_EXHAUSTED",
  "SESSION_LIMIT",
  "POOL_CLOSED",
  "PROTOCOL_ERROR",
  "RESULT_TOO_LARGE",
  // Contract, part 2: "Resources, prompts, completion".
  "RESOURCE_NOT_FOUND",
  "PROMPT_NOT_FOUND",
];

/** One pool for the rows that need nothing but a plain fixture. */
const shared = sharedPool({ servers: { fixture: stdioServer() } });
const pool = testPool;

interface Row {
  /** Completes the title "… rejects with <code> when <when>". */
  when: string;
  /** The server and tool the error must name, for errors of a call. */
  names?: { server: string; tool: string };
  produce(t: ExecutionContext): Promise<unknown>;
}

const fixtureTool = (tool: string) => ({ server: "fixture", tool });

const ROWS: Record<ErrorCode, Row> = {
  CONFIG_INVALID: {
    when: "the config is invalid",
    produce: () => createPool({ servers: { search: { url: "not a url" } } }),
  },
  TOOL_NOT_FOUND: {
    when: "no tool has that name",
    produce: async () => (await shared()).callTool("fixture__no_such_tool", {}),
  },
  INVALID_ARGUMENTS: {
    when: "the arguments do not match the tool's inputSchema",
    names: fixtureTool("echo"),
    produce: async () => (await shared()).callTool("fixture__echo", { message: 5 }),
  },
  SERVER_UNAVAILABLE: {
    when: "the server cannot be started",
    names: { server: "dead", tool: "echo" },
    produce: async (t) => {
      const p = await pool(t, { servers: { dead: { command: "/nonexistent/binary" } } });
      return p.callTool("dead__echo", { message: "x" });
    },
  },
  CONNECTION_LOST: {
    when: "the server process dies during a call to a tool that is not safe to retry",
    names: fixtureTool("crash"),
    produce: async (t) => {
      const p = await pool(t, { servers: { fixture: stdioServer() } });
      return p.callTool("fixture__crash", {});
    },
  },
  TIMEOUT: {
    when: "the call outlives its timeoutMs",
    names: fixtureTool("slow"),
    produce: async () => (await shared()).callTool("fixture__slow", { ms: 10_000 }, { timeoutMs: 200 }),
  },
  ABORTED: {
    when: "the caller's signal aborts the call",
    names: fixtureTool("slow"),
    produce: async () => {
      const p = await shared();
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      return p.callTool("fixture__slow", { ms: 10_000 }, { signal: controller.signal });
    },
  },
  POOL_EXHAUSTED: {
    when: "every connection is at maxInFlightPerConnection and the queue is full",
    names: fixtureTool("slow"),
    produce: async (t) => {
      const p = await pool(t, { servers: { fixture: stdioServer() }, limits: { maxInFlightPerConnection: 1, maxQueue: 0 } });
      const first = p.callTool("fixture__slow", { ms: 300 });
      try {
        return await p.callTool("fixture__slow", { ms: 300 });
      } finally {
        await first;
      }
    },
  },
  SESSION_LIMIT: {
    when: "maxSessions sessions have calls in flight and another session starts",
    produce: async (t) => {
      const p = await pool(t, { servers: { fixture: stdioServer() }, limits: { maxSessions: 1 } });
      const first = p.callTool("fixture__slow", { ms: 300 }, { sessionId: "A" });
      try {
        return await p.callTool("fixture__echo", { message: "x" }, { sessionId: "B" });
      } finally {
        await first;
      }
    },
  },
  POOL_CLOSED: {
    when: "the pool is closed",
    produce: async (t) => {
      const p = await pool(t, { servers: { fixture: stdioServer() } });
      await p.close();
      return p.callTool("fixture__echo", { message: "x" });
    },
  },
  RESOURCE_NOT_FOUND: {
    when: "no server lists the URI or a template that matches it",
    produce: async () => (await shared()).readResource("nowhere://at/all"),
  },
  PROMPT_NOT_FOUND: {
    when: "no prompt has that name",
    produce: async () => (await shared()).getPrompt("fixture__no_such_prompt"),
  },
  PROTOCOL_ERROR: {
    when: "the server answers with a JSON-RPC error",
    names: fixtureTool("rpc_error"),
    produce: async () => (await shared()).callTool("fixture__rpc_error", {}),
  },
  RESULT_TOO_LARGE: {
    when: "the result is larger than limits.maxMessageMb",
    names: fixtureTool("huge"),
    produce: async (t) => {
      const p = await pool(t, { servers: { fixture: stdioServer() }, limits: { maxMessageMb: 0.01 } });
      return p.callTool("fixture__huge", { bytes: 100_000 });
    },
  },
};

test("ERROR_CODES lists exactly the codes in CONTRACT.md", (t) => {
  t.deepEqual([...ERROR_CODES], CONTRACT_CODES);
});

test("every error code has a row in the table", (t) => {
  t.deepEqual(Object.keys(ROWS).sort(), [...ERROR_CODES].sort());
});

for (const code of ERROR_CODES) {
  const row = ROWS[code];
  test(`rejects with ${code} when ${row.when}`, async (t) => {
    const error = await t.throwsAsync(row.produce(t));
    t.true(error instanceof McpPoolError, `expected McpPoolError, got ${String(error)}`);
    t.true(isMcpPoolError(error));
    const poolError = error as McpPoolError;
    t.is(poolError.name, "McpPoolError");
    t.is(poolError.code, code);
    if (row.names) {
      t.is(poolError.server, row.names.server);
      t.is(poolError.tool, row.names.tool);
    }
    if (code === "PROTOCOL_ERROR") t.is(typeof poolError.mcpCode, "number");
  });
}

/**
 * The clients the benchmark compares, behind one small interface. Each runs the same calls
 * against the same fixture server (test/fixtures/server.ts over stdio):
 *
 * - `sdk`: the plain `@modelcontextprotocol/sdk` Client on the main thread;
 * - `langchain`: `@langchain/mcp-adapters` MultiServerMCPClient, used as its README shows
 *   (getTools(), then tool.invoke(args));
 * - `pool-1`, `pool-2`, `pool-4`: this library with 1, 2 and 4 shared replicas.
 */
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { createPool, type McpPool, type PoolConfigInput } from "../src/index.js";

/** The compiled fixture server (dist/test/fixtures/server.js). */
export const FIXTURE_SERVER: string = fileURLToPath(new URL("../test/fixtures/server.js", import.meta.url));
export const FIXTURE_ARGS: string[] = [FIXTURE_SERVER, "stdio"];

export const SUBJECTS = ["sdk", "langchain", "pool-1", "pool-2", "pool-4"] as const;
export type SubjectName = (typeof SUBJECTS)[number];
export const POOL_SUBJECTS = ["pool-1", "pool-2", "pool-4"] as const;

/** Every call made by the benchmark has a deadline: nothing in it may hang. */
export const CALL_TIMEOUT_MS = 15_000;

export interface Subject {
  readonly name: SubjectName;
  /** Calls a fixture tool by its server-side name; resolves with whatever the client returns. */
  call(tool: string, args: Record<string, unknown>): Promise<unknown>;
  /** Process ids of the fixture servers this subject runs right now. */
  serverPids(): Promise<number[]>;
  /** The pool, for pool subjects (stats, kill -9 of a server). */
  readonly pool?: McpPool;
  close(): Promise<void>;
}

export function replicasOf(name: SubjectName): number {
  return name.startsWith("pool-") ? Number(name.slice(5)) : 1;
}

export function poolConfig(replicas: number, extra: Partial<PoolConfigInput> = {}): PoolConfigInput {
  return {
    servers: {
      fixture: {
        command: process.execPath,
        args: FIXTURE_ARGS,
        connections: { min: replicas, max: replicas },
        toolCallTimeoutMs: CALL_TIMEOUT_MS,
        connectTimeoutMs: CALL_TIMEOUT_MS,
      },
    },
    limits: { maxWorkers: Math.max(8, replicas), acquireTimeoutMs: CALL_TIMEOUT_MS },
    ...extra,
  };
}

export async function openSubject(name: SubjectName): Promise<Subject> {
  switch (name) {
    case "sdk":
      return openSdk();
    case "langchain":
      return openLangchain();
    default:
      return openPool(name, replicasOf(name));
  }
}

export async function openSdk(): Promise<Subject> {
  const transport = new StdioClientTransport({ command: process.execPath, args: FIXTURE_ARGS });
  const client = new Client({ name: "bench", version: "0.0.0" });
  try {
    await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
  } catch (error) {
    await transport.close().catch(() => {});
    throw error;
  }
  return {
    name: "sdk",
    call: (tool, args) => client.callTool({ name: tool, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS }),
    serverPids: async () => (transport.pid ? [transport.pid] : []),
    close: () => client.close(),
  };
}

interface InvokableTool {
  name: string;
  invoke(args: Record<string, unknown>): Promise<unknown>;
}

export async function openLangchain(): Promise<Subject> {
  // Loaded on first use: LangChain's module graph is large and most callers (the memory probe) never need it.
  const { MultiServerMCPClient } = await import("@langchain/mcp-adapters");
  const client = new MultiServerMCPClient({
    mcpServers: { fixture: { transport: "stdio", command: process.execPath, args: FIXTURE_ARGS } },
  });
  let tools: Map<string, InvokableTool>;
  try {
    tools = new Map((await client.getTools()).map((t) => [t.name, t as unknown as InvokableTool]));
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  }
  return {
    name: "langchain",
    call: (tool, args) => {
      const t = tools.get(tool);
      return t ? t.invoke(args) : Promise.reject(new Error(`no tool ${tool}`));
    },
    serverPids: async () => {
      const transport = (await client.getClient("fixture"))?.transport as StdioClientTransport | undefined;
      return transport?.pid ? [transport.pid] : [];
    },
    close: () => client.close(),
  };
}

export async function openPool(name: SubjectName, replicas: number): Promise<Subject> {
  const pool = await createPool(poolConfig(replicas));
  const ready = pool.stats().servers.fixture?.connections.filter((c) => c.state === "ready").length ?? 0;
  if (ready < replicas) {
    await pool.close();
    throw new Error(`${name}: only ${ready} of ${replicas} connections became ready`);
  }
  return {
    name,
    pool,
    call: (tool, args) => pool.callTool(`fixture__${tool}`, args, { timeoutMs: CALL_TIMEOUT_MS }),
    serverPids: async () => (pool.stats().servers.fixture?.connections ?? []).flatMap((c) => (c.pid ? [c.pid] : [])),
    close: () => pool.close(),
  };
}

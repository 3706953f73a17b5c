/**
 * The clients the benchmark compares, behind one small interface. Each runs the same calls against
 * a fixture server over stdio serving the same tools (test/fixtures/tools.ts):
 *
 * On the legacy fixture (test/fixtures/server.ts, v1 SDK server, `initialize` handshake):
 * - `sdk`: the plain `@modelcontextprotocol/sdk` (v1) Client on the main thread;
 * - `langchain`: `@langchain/mcp-adapters` MultiServerMCPClient, used as its README shows
 *   (getTools(), then tool.invoke(args));
 * - `pool-1`, `pool-2`, `pool-4`: this library with 1, 2 and 4 shared replicas.
 *
 * On the 2026-07-28 fixture (test/fixtures/modern-server.ts, v2 SDK server, stateless era):
 * - `sdk-v2@2026`: the plain `@modelcontextprotocol/client` (v2) Client pinned to 2026-07-28, on the
 *   main thread over v2's own StdioClientTransport;
 * - `pool-1@2026`, `pool-2@2026`: this library with 1 and 2 replicas, `protocol: "2026-07-28"`.
 *
 * Every ratio compares a pool with the plain client of its own era (`baselineOf`).
 */
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { createPool, type McpPool, type PoolConfigInput } from "../src/index.js";

/** The compiled fixture servers (dist/test/fixtures/server.js, modern-server.js). */
export const FIXTURE_SERVER: string = fileURLToPath(new URL("../test/fixtures/server.js", import.meta.url));
/** `--bench-tools`: the fixture also serves `burn` (1 ms of its CPU per call), the replicas figure's tool. */
export const FIXTURE_ARGS: string[] = [FIXTURE_SERVER, "stdio", "--bench-tools"];
export const MODERN_FIXTURE_SERVER: string = fileURLToPath(new URL("../test/fixtures/modern-server.js", import.meta.url));
/** Modern-only (the fixture's default `--legacy reject`): a subject that fell back to `initialize` fails. */
export const MODERN_FIXTURE_ARGS: string[] = [MODERN_FIXTURE_SERVER, "stdio", "--bench-tools"];
/** The revision the modern subjects pin. */
export const MODERN_PROTOCOL = "2026-07-28";

export const LEGACY_SUBJECTS = ["sdk", "langchain", "pool-1", "pool-2", "pool-4"] as const;
export const MODERN_SUBJECTS = ["sdk-v2@2026", "pool-1@2026", "pool-2@2026"] as const;
export const SUBJECTS = [...LEGACY_SUBJECTS, ...MODERN_SUBJECTS] as const;
export type SubjectName = (typeof SUBJECTS)[number];
/** Every column of the report: the subjects above and the gateway scenario's (bench/gateway.ts). */
export type FigureSubject = SubjectName | "plain-proxy" | "gateway";
export const POOL_SUBJECTS = ["pool-1", "pool-2", "pool-4", "pool-1@2026", "pool-2@2026"] as const;
/** The plain clients every ratio is taken against, one per era. */
export const BASELINES = ["sdk", "sdk-v2@2026"] as const;

export type Era = "legacy" | "modern";

export function eraOf(name: SubjectName): Era {
  return name.endsWith("@2026") ? "modern" : "legacy";
}

/** The plain client of `name`'s era: the denominator of its ratios. */
export function baselineOf(name: SubjectName): SubjectName {
  return eraOf(name) === "modern" ? "sdk-v2@2026" : "sdk";
}

export function isPool(name: SubjectName): boolean {
  return name.startsWith("pool-");
}

export function fixtureArgs(era: Era): string[] {
  return era === "modern" ? MODERN_FIXTURE_ARGS : FIXTURE_ARGS;
}

/** Every call made by the benchmark has a deadline: nothing in it may hang. */
export const CALL_TIMEOUT_MS = 15_000;

export interface Subject {
  readonly name: SubjectName;
  readonly era: Era;
  /** Calls a fixture tool by its server-side name; resolves with whatever the client returns. */
  call(tool: string, args: Record<string, unknown>): Promise<unknown>;
  /** Process ids of the fixture servers this subject runs right now. */
  serverPids(): Promise<number[]>;
  /** The pool, for pool subjects (stats, kill -9 of a server). */
  readonly pool?: McpPool;
  close(): Promise<void>;
}

export function replicasOf(name: SubjectName): number {
  const match = /^pool-(\d+)/.exec(name);
  return match ? Number(match[1]) : 1;
}

/**
 * The legacy pools keep the default `protocol: "auto"` (their figures stay comparable with earlier
 * runs); the modern ones pin 2026-07-28 like their baseline, so that neither side can fall back.
 */
export function poolConfig(replicas: number, era: Era = "legacy", extra: Partial<PoolConfigInput> = {}): PoolConfigInput {
  return {
    servers: {
      fixture: {
        command: process.execPath,
        args: fixtureArgs(era),
        connections: { min: replicas, max: replicas },
        toolCallTimeoutMs: CALL_TIMEOUT_MS,
        connectTimeoutMs: CALL_TIMEOUT_MS,
        ...(era === "modern" && { protocol: MODERN_PROTOCOL }),
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
    case "sdk-v2@2026":
      return openSdkV2();
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
    era: "legacy",
    call: (tool, args) => client.callTool({ name: tool, arguments: args }, undefined, { timeout: CALL_TIMEOUT_MS }),
    serverPids: async () => (transport.pid ? [transport.pid] : []),
    close: () => client.close(),
  };
}

/**
 * The v2 client and LangChain are loaded on first use: the other subjects' hosts (the memory probe's)
 * stay as they were. `preloadClients()` loads both ahead, so that no connect figure includes it.
 */
let sdkV2Modules: Promise<[typeof import("@modelcontextprotocol/client"), typeof import("@modelcontextprotocol/client/stdio")]> | undefined;
function loadSdkV2() {
  sdkV2Modules ??= Promise.all([import("@modelcontextprotocol/client"), import("@modelcontextprotocol/client/stdio")]);
  return sdkV2Modules;
}

export async function preloadClients(names: readonly SubjectName[]): Promise<void> {
  if (names.includes("sdk-v2@2026")) await loadSdkV2();
  if (names.includes("langchain")) await import("@langchain/mcp-adapters");
}

/**
 * The modern baseline: the v2 Client pinned to 2026-07-28 over v2's StdioClientTransport, used as
 * its docs show. v2's pinned connect checks the revision with `server/discover` on a short-lived
 * sibling process before it spawns the real one (protocol-versions.md, "Understand the probe"):
 * that second spawn is part of its connect time.
 */
export async function openSdkV2(): Promise<Subject> {
  const [{ Client: ClientV2 }, { StdioClientTransport: StdioClientTransportV2 }] = await loadSdkV2();
  const transport = new StdioClientTransportV2({ command: process.execPath, args: MODERN_FIXTURE_ARGS });
  const client = new ClientV2({ name: "bench", version: "0.0.0" }, { versionNegotiation: { mode: { pin: MODERN_PROTOCOL } } });
  try {
    await client.connect(transport, { timeout: CALL_TIMEOUT_MS });
    const version = client.getNegotiatedProtocolVersion();
    if (version !== MODERN_PROTOCOL) throw new Error(`sdk-v2@2026: connected at ${version ?? "no version"}, not ${MODERN_PROTOCOL}`);
  } catch (error) {
    await client.close().catch(() => {});
    await transport.close().catch(() => {});
    throw error;
  }
  return {
    name: "sdk-v2@2026",
    era: "modern",
    call: (tool, args) => client.callTool({ name: tool, arguments: args }, { timeout: CALL_TIMEOUT_MS }),
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
    era: "legacy",
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
  const era = eraOf(name);
  const pool = await createPool(poolConfig(replicas, era));
  const server = pool.stats().servers.fixture;
  const ready = server?.connections.filter((c) => c.state === "ready").length ?? 0;
  if (ready < replicas) {
    await pool.close();
    throw new Error(`${name}: only ${ready} of ${replicas} connections became ready`);
  }
  if (era === "modern" && server?.protocolVersion !== MODERN_PROTOCOL) {
    await pool.close();
    throw new Error(`${name}: connected at ${server?.protocolVersion ?? "no version"}, not ${MODERN_PROTOCOL}`);
  }
  return {
    name,
    era,
    pool,
    call: (tool, args) => pool.callTool(`fixture__${tool}`, args, { timeoutMs: CALL_TIMEOUT_MS }),
    serverPids: async () => (pool.stats().servers.fixture?.connections ?? []).flatMap((c) => (c.pid ? [c.pid] : [])),
    close: () => pool.close(),
  };
}

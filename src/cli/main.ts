#!/usr/bin/env node
/**
 * `mcp-worker-pool`: serve the pool as one MCP endpoint, list its tools, or call one.
 * Exit codes: 0 done; 1 a call failed (the error's code on stderr) or a tool answered isError; 2 bad
 * usage or config (CONFIG_INVALID with the offending paths).
 */
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { McpPool, PoolOptions } from "../pool.js";
import { parseConfig, type PoolConfig } from "../config.js";
import { isMcpPoolError, McpPoolError } from "../errors.js";
import type { GatewayLogEvent } from "../gateway/gateway.js";
import { tokensFrom } from "../gateway/auth.js";
import { serverLogger } from "./logs.js";

const HELP: Record<string, string> = {
  main: `Usage: mcp-worker-pool <command> [options]

Commands:
  serve   serve the pool as one Streamable HTTP MCP endpoint at /mcp
  tools   print the pool's tools as JSON
  call    call one tool and print its result as JSON

Run mcp-worker-pool <command> --help for a command's options.
`,
  serve: `Usage: mcp-worker-pool serve --config <file> [--host 127.0.0.1] [--port 3000]

Serves the servers of <file> (the pool's JSON config; an "mcpServers" file loads as is) at
http://<host>:<port>/mcp for MCP clients of both protocol eras, with GET /healthz, /readyz and /metrics.
The config's "gateway" block sets tokens, forwardHeaders, host, port and allowedOrigins; MCP_POOL_TOKENS
(comma-separated) gives bearer tokens when the config has none. Logs are JSON lines on stderr.
SIGTERM or SIGINT drains the requests in flight, closes every server and exits 0.
`,
  tools: `Usage: mcp-worker-pool tools --config <file>

Starts the servers of <file>, prints their tools as a JSON array of { name, server, description } and exits.
`,
  call: `Usage: mcp-worker-pool call --config <file> <tool> [json-args]

Calls <tool> (its pool name, as "tools" prints it) with [json-args] (a JSON object, default {}) and prints
the result as JSON. Exit 1 when the call fails (its error code on stderr) or the tool answers isError.
`,
};

class UsageError extends Error {}

interface Args {
  command: string | undefined;
  config?: string;
  host?: string;
  port?: number;
  help: boolean;
  rest: string[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { command: undefined, help: false, rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === "--help" || arg === "-h") args.help = true;
    else if (arg === "--config" || arg === "-c") args.config = value();
    else if (arg === "--host") args.host = value();
    else if (arg === "--port") {
      const port = Number(value());
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a port number (0-65535)`);
      args.port = port;
    } else if (arg.startsWith("-") && arg !== "-") throw new UsageError(`unknown option ${arg}`);
    else if (args.command === undefined) args.command = arg;
    else args.rest.push(arg);
  }
  return args;
}

function loadConfig(file: string | undefined): PoolConfig {
  if (!file) throw new UsageError("--config <file> is required");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new McpPoolError("CONFIG_INVALID", `cannot read ${file}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new McpPoolError("CONFIG_INVALID", `${file} is not JSON: ${(error as Error).message}`);
  }
  return parseConfig(json);
}

/** Starts the pool; on a terminal, says which servers are ready and which failed as they do. */
async function startPool(config: PoolConfig, options: PoolOptions = {}, log?: (e: Record<string, unknown>) => void, wait = true): Promise<McpPool> {
  // Imported here, so that --help and usage errors answer without loading the pool.
  const { McpPool } = await import("../pool.js");
  const pool = new McpPool(config, options);
  const tty = process.stderr.isTTY === true;
  const pending = new Set(Object.keys(config.servers));
  const report = (state: "ready" | "failed" | "lost") => (e: { server?: string; sessionId?: string; error?: unknown }) => {
    if (e.sessionId !== undefined || e.server === undefined) return;
    log?.({ event: "server.state", server: e.server, state, ...(e.error !== undefined ? { error: messageOf(e.error) } : {}) });
    if (tty && pending.delete(e.server)) {
      process.stderr.write(state === "ready" ? `  ✓ ${e.server} ready\n` : `  ✗ ${e.server} failed: ${messageOf(e.error)}\n`);
    }
  };
  pool.on("connection:ready", report("ready"));
  pool.on("connection:failed", report("failed"));
  pool.on("connection:lost", report("lost"));
  if (tty) process.stderr.write(`Starting ${pending.size} server${pending.size === 1 ? "" : "s"}…\n`);
  if (wait) await pool.ready();
  return pool;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : error === undefined ? "unknown error" : String(error);
}

/** The OTel metrics SDK and Prometheus exporter, when installed: a MeterProvider registered before the pool starts. */
async function startMetrics(): Promise<{ handler: (req: IncomingMessage, res: ServerResponse) => void; shutdown: () => Promise<void> } | undefined> {
  try {
    const api = await import("@opentelemetry/api");
    const { MeterProvider } = await import("@opentelemetry/sdk-metrics");
    const { PrometheusExporter } = await import("@opentelemetry/exporter-prometheus");
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const provider = new MeterProvider({ readers: [exporter] });
    api.metrics.setGlobalMeterProvider(provider);
    return { handler: (req, res) => exporter.getMetricsRequestHandler(req, res), shutdown: () => provider.shutdown() };
  } catch {
    return undefined;
  }
}

async function serve(args: Args): Promise<number> {
  const config = loadConfig(args.config);
  const log = serverLogger(process.stderr);
  const metrics = await startMetrics();
  if (!metrics) log({ event: "metrics.unavailable", reason: "install @opentelemetry/api, @opentelemetry/sdk-metrics and @opentelemetry/exporter-prometheus for /metrics" });
  // Declared so that a legacy shared server may ask; a request no downstream call is waiting for is refused.
  const refuse = () => {
    throw new Error("no downstream request is waiting for this input");
  };
  // Listening while the servers start: /healthz answers, /readyz and /mcp say 503 until they are ready.
  const pool = await startPool(config, { onElicitation: refuse, onSampling: refuse, roots: refuse }, log, false);
  const g = config.gateway ?? {};
  const { serveGateway } = await import("../gateway/gateway.js");
  let gateway;
  try {
    gateway = await serveGateway(pool, {
      host: args.host ?? g.host ?? "127.0.0.1",
      port: args.port ?? g.port ?? 3000,
      tokens: tokensFrom(g.tokens, process.env.MCP_POOL_TOKENS),
      forwardHeaders: g.forwardHeaders ?? [],
      allowedOrigins: g.allowedOrigins ?? [],
      ...(metrics ? { metrics: metrics.handler } : {}),
      log: (e: GatewayLogEvent) => log(e),
    });
  } catch (error) {
    await pool.close();
    await metrics?.shutdown();
    throw error;
  }
  if (process.stderr.isTTY) process.stderr.write(`Serving at ${gateway.url}\n`);
  const open = gateway;
  const stopped = new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log({ event: "gateway.stopping", signal });
      void (async () => {
        await open.close();
        await pool.close();
        await metrics?.shutdown().catch(() => {});
        resolve(0);
      })();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  void pool.ready().then(() => log({ event: "gateway.ready" }));
  return stopped;
}

async function tools(args: Args): Promise<number> {
  const pool = await startPool(loadConfig(args.config));
  try {
    const list = await pool.listTools();
    process.stdout.write(JSON.stringify(list.map((t) => ({ name: t.name, server: t.server, description: t.tool.description })), null, 2) + "\n");
    return 0;
  } finally {
    await pool.close();
  }
}

async function call(args: Args): Promise<number> {
  const [tool, json] = args.rest;
  if (!tool) throw new UsageError("call needs a tool name");
  let input: unknown = {};
  if (json !== undefined) {
    try {
      input = JSON.parse(json);
    } catch (error) {
      throw new UsageError(`json-args is not JSON: ${(error as Error).message}`);
    }
    if (input === null || typeof input !== "object" || Array.isArray(input)) throw new UsageError("json-args must be a JSON object");
  }
  const pool = await startPool(loadConfig(args.config));
  try {
    const result = await pool.callTool(tool, input as Record<string, unknown>);
    process.stdout.write(JSON.stringify(result, null, 2) + "\n");
    return result.isError === true ? 1 : 0;
  } catch (error) {
    if (!isMcpPoolError(error)) throw error;
    process.stderr.write(JSON.stringify({ error: error.toJSON() }) + "\n");
    return 1;
  } finally {
    await pool.close();
  }
}

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP.main}`);
    return 2;
  }
  const command = args.command;
  if (command === undefined || command === "help") {
    process.stdout.write(HELP.main!);
    return args.help || command === "help" ? 0 : 2;
  }
  const run = { serve, tools, call }[command as "serve" | "tools" | "call"];
  if (!run) {
    process.stderr.write(`unknown command ${command}\n\n${HELP.main}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(HELP[command]!);
    return 0;
  }
  try {
    return await run(args);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n\n${HELP[command]}`);
      return 2;
    }
    if (isMcpPoolError(error) && error.code === "CONFIG_INVALID") {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    process.stderr.write(`${messageOf(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));

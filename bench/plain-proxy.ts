/**
 * The gateway benchmark's baseline: an MCP proxy written the usual way with the SDK v2. One
 * `@modelcontextprotocol/client` Client to the upstream server (stdio), opened once at module scope;
 * `createMcpHandler` builds a low-level `Server` per request (the v2 docs' pattern) whose handlers list
 * the upstream tools and forward each call to that Client, on the same thread; served on `node:http`
 * through `toNodeHandler` behind the localhost guards, as serving/http.md mounts it.
 */
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Client } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { Server, createMcpHandler } from "@modelcontextprotocol/server";
import { localhostHostValidation, localhostOriginValidation, toNodeHandler } from "@modelcontextprotocol/node";

export interface PlainProxy {
  readonly url: string;
  /** The upstream server's process id. */
  readonly upstreamPid: number | undefined;
  close(): Promise<void>;
}

/** Connects to the upstream stdio server `command args`, then serves it at `http://127.0.0.1:<port>/mcp`. */
export async function servePlainProxy(command: string, args: string[], port = 0, timeoutMs = 15_000): Promise<PlainProxy> {
  const transport = new StdioClientTransport({ command, args });
  const client = new Client({ name: "plain-proxy", version: "0.0.0" });
  await client.connect(transport, { timeout: timeoutMs });
  const { tools } = await client.listTools(undefined, { timeout: timeoutMs });

  const handler = createMcpHandler(() => {
    const server = new Server({ name: "plain-proxy", version: "0.0.0" }, { capabilities: { tools: {} } });
    server.setRequestHandler("tools/list", async () => ({ tools }));
    server.setRequestHandler("tools/call", async (request) => (await client.callTool(request.params, { timeout: timeoutMs })) as never);
    return server;
  });
  const nodeHandler = toNodeHandler(handler);
  const validateHost = localhostHostValidation();
  const validateOrigin = localhostOriginValidation();
  const http: HttpServer = createServer((req, res) => {
    if (!validateHost(req, res) || !validateOrigin(req, res)) return;
    void nodeHandler(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, "127.0.0.1", () => resolve());
  });
  const { port: bound } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${bound}/mcp`,
    upstreamPid: transport.pid ?? undefined,
    close: async () => {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await handler.close();
      await client.close();
    },
  };
}

/**
 * The gateway's MCP server, as downstream clients see it: one low-level SDK `Server` per legacy session
 * (or per 2026-07-28 request), whose handlers delegate to the pool through the downstream client's own
 * pool session, under pool names. Tool calls, prompt gets and resource reads run as exchanges
 * (exchange.ts), so a server's request for input reaches the client whose call caused it.
 */
import { CLIENT_CAPABILITIES_META_KEY, ProtocolError, Server, inputRequired, type ServerContext } from "@modelcontextprotocol/server";
import { isMcpPoolError } from "../errors.js";
import type { McpPool } from "../pool.js";
import { Exchange } from "./exchange.js";
import type { DownstreamSession } from "./session.js";

const INVALID_PARAMS = -32602;
const INTERNAL_ERROR = -32603;

/** What a server's handlers need of the gateway. */
export interface ServerHost {
  readonly pool: McpPool;
  /** Rounds awaiting the client's retry, by their `requestState` token. */
  readonly pending: Map<string, Exchange>;
  readonly name: string;
  readonly version: string;
}

export function buildServer(host: ServerHost, sessionOf: () => DownstreamSession): Server {
  const server = new Server(
    { name: host.name, version: host.version },
    { capabilities: { tools: { listChanged: true }, resources: { listChanged: true }, prompts: { listChanged: true }, completions: {} } },
  );
  const { pool } = host;
  server.setRequestHandler("tools/list", async () => {
    const tools = await sessionOf().handle.listTools();
    return { tools: tools.map((t) => ({ ...t.tool, name: t.name })) };
  });
  server.setRequestHandler("tools/call", async (request, ctx) => {
    const { name } = request.params;
    const args = (request.params.arguments ?? {}) as Record<string, unknown>;
    const listed = (await pool.listTools()).find((t) => t.name === name);
    return (await exchange(host, server, sessionOf(), ctx, listed?.server, listed?.tool.name, request.params._meta?.progressToken, (session, signal, ex) =>
      session.handle.callTool(name, args, { signal, onProgress: (p) => ex.progress?.(p) }),
    )) as never;
  });
  server.setRequestHandler("resources/list", async () => {
    const resources = await sessionOf().handle.listResources();
    return { resources: resources.map((r) => r.resource) };
  });
  server.setRequestHandler("resources/templates/list", async () => {
    const templates = await sessionOf().handle.listResourceTemplates();
    return { resourceTemplates: templates.map((r) => r.resourceTemplate) };
  });
  server.setRequestHandler("resources/read", async (request, ctx) => {
    const { uri } = request.params;
    return (await exchange(host, server, sessionOf(), ctx, undefined, undefined, request.params._meta?.progressToken, (session, signal) =>
      session.handle.readResource(uri, { signal }),
    )) as never;
  });
  server.setRequestHandler("prompts/list", async () => {
    const prompts = await sessionOf().handle.listPrompts();
    return { prompts: prompts.map((p) => ({ ...p.prompt, name: p.name })) };
  });
  server.setRequestHandler("prompts/get", async (request, ctx) => {
    const { name } = request.params;
    const args = (request.params.arguments ?? {}) as Record<string, string>;
    const listed = (await pool.listPrompts()).find((p) => p.name === name);
    return (await exchange(host, server, sessionOf(), ctx, listed?.server, undefined, request.params._meta?.progressToken, (session, signal) =>
      session.handle.getPrompt(name, args, { signal }),
    )) as never;
  });
  server.setRequestHandler("completion/complete", async (request, ctx) => {
    try {
      const completion = await sessionOf().handle.complete(request.params as never, { signal: ctx.mcpReq.signal });
      return { completion };
    } catch (error) {
      throw protocolErrorOf(error);
    }
  });
  return server;
}

/**
 * One round of a downstream request: the first starts the pool request; a retry (its `requestState` a
 * token of ours, from the same principal) delivers the client's answers. The round ends with the pool's
 * result, or with `input_required` when a server asked for input meanwhile.
 */
async function exchange(
  host: ServerHost,
  server: Server,
  session: DownstreamSession,
  ctx: ServerContext,
  upstream: string | undefined,
  tool: string | undefined,
  progressToken: string | number | undefined,
  run: (session: DownstreamSession, signal: AbortSignal, ex: Exchange) => Promise<unknown>,
): Promise<unknown> {
  const state = ctx.mcpReq.requestState();
  let ex: Exchange | undefined;
  if (typeof state === "string") {
    ex = host.pending.get(state);
    // Another principal's token is as unknown as a forged one.
    if (!ex || ex.principal !== session.principal) throw new ProtocolError(INVALID_PARAMS, "Invalid or expired requestState");
    host.pending.delete(state);
    ex.deliver(ctx.mcpReq.inputResponses);
  } else {
    const started = new Exchange(session.principal, upstream, tool);
    ex = started;
    session.exchanges.add(started);
    started.start((signal) => run(session, signal, started));
    void started.ended.then(() => {
      session.exchanges.delete(started);
      if (started.token !== undefined) host.pending.delete(started.token);
    });
  }
  const legacyCaps = server.getClientCapabilities() as Record<string, unknown> | undefined;
  const envelope = ctx.mcpReq.envelope as Record<string, unknown> | undefined;
  ex.clientCapabilities = (envelope?.[CLIENT_CAPABILITIES_META_KEY] as Record<string, unknown> | undefined) ?? legacyCaps;
  ex.progress =
    progressToken === undefined
      ? undefined
      : (p) => void ctx.mcpReq.notify({ method: "notifications/progress", params: { progressToken, ...p } }).catch(() => {});
  const current = ex;
  const cancel = () => current.abort.abort(ctx.mcpReq.signal.reason);
  if (ctx.mcpReq.signal.aborted) cancel();
  ctx.mcpReq.signal.addEventListener("abort", cancel, { once: true });
  session.active++;
  try {
    await ex.next();
    const outcome = ex.outcome;
    if (outcome) {
      if (outcome.ok) return outcome.value;
      throw protocolErrorOf(outcome.error);
    }
    const round = ex.round();
    host.pending.set(round.requestState, ex);
    return inputRequired(round as never);
  } finally {
    ex.progress = undefined;
    ctx.mcpReq.signal.removeEventListener("abort", cancel);
    session.active--;
    session.lastSeen = Date.now();
  }
}

/** A pool error as the JSON-RPC error the downstream client gets: its code and server in `data`. */
export function protocolErrorOf(error: unknown): Error {
  if (error instanceof ProtocolError) return error;
  if (!isMcpPoolError(error)) return new ProtocolError(INTERNAL_ERROR, error instanceof Error ? error.message : String(error));
  switch (error.code) {
    case "TOOL_NOT_FOUND":
    case "PROMPT_NOT_FOUND":
    case "INVALID_ARGUMENTS":
      return new ProtocolError(INVALID_PARAMS, error.message, { code: error.code });
    case "RESOURCE_NOT_FOUND": {
      // The spec's resource-not-found: -32602 whose data is exactly { uri }.
      const uri = (error.data as { uri?: unknown } | undefined)?.uri;
      return new ProtocolError(INVALID_PARAMS, error.message, typeof uri === "string" ? { uri } : { code: error.code });
    }
    default: {
      const data = { code: error.code, server: error.server };
      return new ProtocolError(error.mcpCode ?? INTERNAL_ERROR, `${error.code}: ${error.message}`, data);
    }
  }
}

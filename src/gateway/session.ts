/**
 * A downstream client of the gateway: one pool session. A legacy client is one `Mcp-Session-Id` (its own
 * transport and `Server`); a 2026-07-28 client is its principal (its bearer token's, else its `_meta`
 * client identity). Its forwarded headers go to its session-scoped servers; the servers' requests for
 * input that the pool routes to it go to the exchange of its call that caused them, and to no other.
 */
import type { Server, WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import type { McpPool, PoolSession } from "../pool.js";
import type { ServerRequestContext } from "../server-requests.js";
import type { Exchange, InputAsk } from "./exchange.js";

export type Era = "legacy" | "modern";

export class DownstreamSession {
  /** The pool session's id (never the client's `Mcp-Session-Id`, which is a secret of the client). */
  readonly id: string;
  readonly era: Era;
  readonly principal: string;
  readonly handle: PoolSession;
  /** The headers named in `forwardHeaders`, from the client's latest request: read at each connect. */
  forwarded: Record<string, string> = {};
  readonly exchanges = new Set<Exchange>();
  /** Handler calls in flight (a session with one is never idle). */
  active = 0;
  lastSeen = Date.now();
  /** Legacy: the client's `Mcp-Session-Id`, its transport and server. */
  mcpSessionId: string | undefined;
  transport: WebStandardStreamableHTTPServerTransport | undefined;
  server: Server | undefined;
  closing: Promise<void> | undefined;

  constructor(pool: McpPool, id: string, era: Era, principal: string) {
    this.id = id;
    this.era = era;
    this.principal = principal;
    this.handle = pool.session(id, {
      headers: () => ({ ...this.forwarded }),
      onElicitation: (params, ctx) => this.#ask(ctx, "elicitation", { method: "elicitation/create", params: params as Record<string, unknown> }) as never,
      onSampling: (params, ctx) => this.#ask(ctx, "sampling", { method: "sampling/createMessage", params: params as Record<string, unknown> }) as never,
      roots: async (ctx) => ((await this.#ask(ctx, "roots", { method: "roots/list" })) as { roots: never[] }).roots,
    });
  }

  /** Keeps the named headers of a request (names compared case-insensitively, as HTTP does). */
  forward(headers: Headers, names: readonly string[]): void {
    if (names.length === 0) return;
    const kept: Record<string, string> = {};
    for (const name of names) {
      const value = headers.get(name);
      if (value !== null) kept[name.toLowerCase()] = value;
    }
    this.forwarded = kept;
  }

  /**
   * A server's request for input, routed by the pool to this session: it goes to the exchange of the call
   * that caused it (same server, and same tool when the pool knows it), whose client must have declared
   * the capability. Anything else is refused, so the server gets an error rather than a wrong answer.
   */
  #ask(ctx: ServerRequestContext, capability: "elicitation" | "sampling" | "roots", request: InputAsk["request"]): Promise<unknown> {
    for (const ex of this.exchanges) {
      if (ex.outcome) continue;
      if (ex.server !== undefined && ex.server !== ctx.server) continue;
      if (ex.tool !== undefined && ctx.tool !== undefined && ex.tool !== ctx.tool) continue;
      if (!ex.clientCapabilities?.[capability]) return Promise.reject(new Error(`the downstream client did not declare the ${capability} capability`));
      return ex.ask(request, ctx.signal);
    }
    return Promise.reject(new Error(`no request of this downstream client is waiting for ${request.method}`));
  }
}

/**
 * The gateway: the pool served as one Streamable HTTP MCP endpoint at `/mcp`, both eras, plus `/healthz`,
 * `/readyz` and (when given a handler) `/metrics`. In front of the SDK: the Host/Origin guards, bearer
 * tokens, the body cap and the session limit. Behind it: 2025-era clients get a sessionful transport each
 * (routed by `isLegacyRequest`, their `Mcp-Session-Id` bound to their principal); 2026-07-28 requests go
 * to one `createMcpHandler` whose per-request servers find their session by principal.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash, randomBytes } from "node:crypto";
import {
  CLIENT_INFO_META_KEY,
  WebStandardStreamableHTTPServerTransport,
  createMcpHandler,
  isLegacyRequest,
  type AuthInfo,
  type McpHttpHandler,
} from "@modelcontextprotocol/server";
import { localhostHostValidation, localhostOriginValidation, originValidation, toNodeHandler, type NodeMcpRequestHandler } from "@modelcontextprotocol/node";
import type { McpPool, PoolEvent } from "../pool.js";
import { Tokens } from "./auth.js";
import { buildServer, type ServerHost } from "./server.js";
import type { Exchange } from "./exchange.js";
import { DownstreamSession, type Era } from "./session.js";

/** One structured log event of the gateway (`event` names it; the rest are its fields). */
export interface GatewayLogEvent {
  event: "session.open" | "session.close" | "request.rejected" | "gateway.listening" | "gateway.closed";
  [field: string]: unknown;
}

export interface GatewayOptions {
  /** Interface to bind. Default `127.0.0.1` (loopback only). */
  host?: string;
  /** TCP port; 0 picks a free one (see the returned `url`). Default 3000. */
  port?: number;
  /** Bearer tokens, any of which a request must present (`Authorization: Bearer <token>`); none: no auth. Refused → 401. */
  tokens?: readonly string[];
  /** Request headers (e.g. `["authorization"]`) passed on to the client's session-scoped servers, and nowhere else. */
  forwardHeaders?: readonly string[];
  /**
   * Origins (hostnames, or `<scheme>://*`) a browser client may come from; a request whose `Origin` is not
   * one of them is refused with 403. Default: localhost origins only. Requests without `Origin` pass.
   */
  allowedOrigins?: readonly string[];
  /** Serves `GET /metrics` (e.g. the OTel Prometheus exporter's request handler). Without it, 404. */
  metrics?: (req: IncomingMessage, res: ServerResponse) => void;
  /** Receives one event per session open/close and per rejected request (the CLI writes them as JSON lines). */
  log?: (event: GatewayLogEvent) => void;
}

export interface Gateway {
  /** The endpoint, e.g. `http://127.0.0.1:3000/mcp`. */
  readonly url: string;
  /** Stops accepting, lets requests in flight finish (up to `limits.drainTimeoutMs`), closes every downstream session. Idempotent. Does not close the pool. */
  close(): Promise<void>;
}

const NAME = "mcp-worker-pool-gateway";
const VERSION = "0.1.0";
/** The session limit's answer: a client may try again this many seconds later. */
const RETRY_AFTER_S = 5;

/**
 * Serves `pool` over Streamable HTTP at `/mcp`. Resolves once listening.
 * @throws the listen error (e.g. EADDRINUSE).
 */
export async function serveGateway(pool: McpPool, options: GatewayOptions = {}): Promise<Gateway> {
  const gateway = new GatewayServer(pool, options);
  await gateway.listen(options.host ?? "127.0.0.1", options.port ?? 3000);
  return gateway;
}

class GatewayServer implements Gateway, ServerHost {
  readonly pool: McpPool;
  readonly pending = new Map<string, Exchange>();
  readonly name = NAME;
  readonly version = VERSION;
  url = "";
  readonly #options: GatewayOptions;
  readonly #tokens: Tokens;
  readonly #forward: readonly string[];
  readonly #http: HttpServer;
  readonly #modern: McpHttpHandler;
  readonly #node: NodeMcpRequestHandler;
  readonly #maxBody: number;
  /** Legacy sessions by `Mcp-Session-Id`; modern ones by principal. */
  readonly #legacy = new Map<string, DownstreamSession>();
  readonly #byPrincipal = new Map<string, DownstreamSession>();
  readonly #byPoolId = new Map<string, DownstreamSession>();
  readonly #sweep: NodeJS.Timeout;
  readonly #onPoolEvent: Record<string, (e: PoolEvent) => void>;
  #guards: ((req: IncomingMessage, res: ServerResponse) => boolean)[] = [];
  #ids = 0;
  /** POSTs and DELETEs being answered, their response streams included (drained on close). */
  #inFlight = 0;
  #closing: Promise<void> | undefined;
  /** Every server is ready or has failed its first attempt (`pool.ready()`). */
  #ready = false;

  constructor(pool: McpPool, options: GatewayOptions) {
    this.pool = pool;
    void pool.ready().then(() => (this.#ready = true), () => {});
    this.#options = options;
    this.#tokens = new Tokens(options.tokens ?? []);
    this.#forward = (options.forwardHeaders ?? []).map((h) => h.toLowerCase());
    this.#maxBody = Math.floor(pool.config.limits.maxMessageMb * 1024 * 1024);
    this.#modern = createMcpHandler(({ authInfo }) => buildServer(this, () => this.#modernSession(authInfo)), {
      legacy: "reject",
      maxRequestBodySize: this.#maxBody,
    });
    this.#node = toNodeHandler({ fetch: (request, opts) => this.#route(request, opts?.authInfo) }, { maxRequestBodySize: this.#maxBody });
    this.#http = createServer((req, res) => void this.#handle(req, res));
    const idleMs = pool.config.limits.sessionIdleTimeoutMs;
    this.#sweep = setInterval(() => this.#sweepIdle(idleMs), Math.max(25, Math.min(1_000, Math.floor(idleMs / 4))));
    this.#sweep.unref();
    // The pool's list changes reach every client as the gateway's own; a session the pool ended ends here too.
    const changed = (kind: "tools" | "resources" | "prompts") => (e: PoolEvent) => this.#listChanged(kind, e.sessionId);
    this.#onPoolEvent = {
      "tools:changed": changed("tools"),
      "resources:changed": changed("resources"),
      "prompts:changed": changed("prompts"),
      "session:close": (e) => {
        const s = e.sessionId === undefined ? undefined : this.#byPoolId.get(e.sessionId);
        if (s) void this.#closeSession(s, "pool");
      },
    };
    for (const [name, fn] of Object.entries(this.#onPoolEvent)) pool.on(name, fn);
  }

  async listen(host: string, port: number): Promise<void> {
    const loopback = host === "127.0.0.1" || host === "localhost" || host === "::1";
    // DNS rebinding: on a loopback bind only loopback Host names are served (a browser page cannot reach it under another name).
    if (loopback) this.#guards.push(localhostHostValidation());
    const origins = this.#options.allowedOrigins;
    this.#guards.push(origins && origins.length > 0 ? originValidation([...origins]) : localhostOriginValidation());
    await new Promise<void>((resolve, reject) => {
      this.#http.once("error", reject);
      this.#http.listen(port, host, () => {
        this.#http.off("error", reject);
        resolve();
      });
    });
    const address = this.#http.address() as AddressInfo;
    const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
    this.url = `http://${shown}:${address.port}/mcp`;
    this.#log({ event: "gateway.listening", url: this.url });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  // ---- HTTP ----------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path === "/healthz" && req.method === "GET") return plain(res, 200, "ok\n");
    if (path === "/readyz" && req.method === "GET") return plain(res, this.#ready ? 200 : 503, this.#ready ? "ready\n" : "starting\n");
    if (path === "/metrics" && req.method === "GET" && this.#options.metrics) return this.#options.metrics(req, res);
    if (path !== "/mcp") return this.#reject(req, res, 404, "not found");
    if (this.#closing) return this.#reject(req, res, 503, "closing", { "Retry-After": String(RETRY_AFTER_S) });
    // Until every server is ready or has failed once, the catalog is not complete: clients wait.
    if (!this.#ready) return this.#reject(req, res, 503, "starting", { "Retry-After": "1" });
    for (const guard of this.#guards) {
      if (!guard(req, res)) return this.#rejected(req, 403, "host or origin not allowed");
    }
    let principal = "anonymous";
    if (this.#tokens.required) {
      const found = this.#tokens.principalOf(req.headers.authorization);
      if (found === undefined) return this.#reject(req, res, 401, "unauthorized", { "WWW-Authenticate": 'Bearer realm="mcp"' });
      principal = found;
    }
    const length = Number(req.headers["content-length"] ?? 0);
    if (length > this.#maxBody) return this.#reject(req, res, 413, "request body over limits.maxMessageMb");
    (req as IncomingMessage & { auth?: AuthInfo }).auth = { token: "", clientId: principal, scopes: [], extra: { tokens: this.#tokens.required } };
    // A GET is a client's standing notification stream: not a request to wait for when draining.
    const counted = req.method !== "GET";
    if (counted) this.#inFlight++;
    try {
      await this.#node(req, res);
      if (res.statusCode === 413) this.#rejected(req, 413, "request body over limits.maxMessageMb");
    } finally {
      if (counted) this.#inFlight--;
    }
  }

  /** A request past the guards: legacy ones to their session's transport, the rest to the 2026-07-28 handler. */
  async #route(request: Request, authInfo: AuthInfo | undefined): Promise<Response> {
    const principal = authInfo?.clientId ?? "anonymous";
    let body: unknown;
    if (request.method === "POST") body = await request.clone().json().catch(() => undefined);
    if (await isLegacyRequest(request, body, { maxRequestBodySize: this.#maxBody })) return this.#legacyRequest(request, body, principal, authInfo);
    // 2026-07-28: without tokens, the client is who its `_meta` says it is.
    let who = principal;
    if (!this.#tokens.required) {
      const info = (body as { params?: { _meta?: Record<string, unknown> } } | undefined)?.params?._meta?.[CLIENT_INFO_META_KEY] as { name?: unknown; version?: unknown } | undefined;
      if (info && typeof info.name === "string") who = `client:${info.name}@${String(info.version ?? "")}`;
    }
    let session = this.#byPrincipal.get(who);
    if (!session) {
      const full = this.#full();
      if (full) return full;
      session = this.#open("modern", who);
      this.#byPrincipal.set(who, session);
    }
    session.lastSeen = Date.now();
    session.forward(request.headers, this.#forward);
    return this.#modern.fetch(request, { authInfo: { token: "", clientId: who, scopes: [] }, parsedBody: body });
  }

  async #legacyRequest(request: Request, body: unknown, principal: string, authInfo: AuthInfo | undefined): Promise<Response> {
    const id = request.headers.get("mcp-session-id");
    if (id !== null) {
      const session = this.#legacy.get(id);
      // Another principal presenting the id learns nothing: the same 404 as an unknown id.
      if (!session || session.principal !== principal || session.closing) {
        this.#rejected(request, 404, "unknown session");
        return jsonRpcError(404, -32001, "Session not found");
      }
      session.lastSeen = Date.now();
      session.forward(request.headers, this.#forward);
      return session.transport!.handleRequest(request, { authInfo, parsedBody: body });
    }
    if (!isInitialize(body)) {
      this.#rejected(request, 400, "no session id");
      return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    }
    const full = this.#full();
    if (full) return full;
    const session = this.#open("legacy", principal);
    // 256 random bits: unguessable, and bound to the principal above.
    const mcpSessionId = randomBytes(32).toString("base64url");
    session.mcpSessionId = mcpSessionId;
    session.forward(request.headers, this.#forward);
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => mcpSessionId,
      onsessionclosed: () => void this.#closeSession(session, "client"),
    });
    session.transport = transport;
    session.server = buildServer(this, () => session);
    this.#legacy.set(mcpSessionId, session);
    await session.server.connect(transport);
    return transport.handleRequest(request, { authInfo, parsedBody: body });
  }

  /** At `limits.maxSessions`: the 503 a new client gets. */
  #full(): Response | undefined {
    if (this.#byPoolId.size < this.pool.config.limits.maxSessions) return undefined;
    this.#log({ event: "request.rejected", status: 503, reason: "session limit" });
    return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: "Too many sessions; retry later" }, id: null }), {
      status: 503,
      headers: { "Content-Type": "application/json", "Retry-After": String(RETRY_AFTER_S) },
    });
  }

  #open(era: Era, principal: string): DownstreamSession {
    const id = era === "modern" ? `gw-m-${createHash("sha256").update(principal).digest("hex").slice(0, 16)}` : `gw-${process.pid}-${++this.#ids}`;
    const session = new DownstreamSession(this.pool, id, era, principal);
    this.#byPoolId.set(id, session);
    this.#log({ event: "session.open", session: id, era, principal });
    return session;
  }

  #modernSession(authInfo: AuthInfo | undefined): DownstreamSession {
    const who = authInfo?.clientId ?? "anonymous";
    let session = this.#byPrincipal.get(who);
    if (!session) {
      // Opened by #route before the handler runs; reopened here only if it was swept in between.
      session = this.#open("modern", who);
      this.#byPrincipal.set(who, session);
    }
    session.lastSeen = Date.now();
    return session;
  }

  #closeSession(session: DownstreamSession, why: "client" | "idle" | "pool" | "gateway"): Promise<void> {
    session.closing ??= (async () => {
      this.#byPoolId.delete(session.id);
      if (session.mcpSessionId !== undefined) this.#legacy.delete(session.mcpSessionId);
      if (this.#byPrincipal.get(session.principal) === session) this.#byPrincipal.delete(session.principal);
      for (const ex of session.exchanges) {
        if (ex.token !== undefined) this.pending.delete(ex.token);
        ex.drop("the downstream session has ended");
      }
      await Promise.allSettled([session.server?.close(), session.handle.close()]);
      this.#log({ event: "session.close", session: session.id, era: session.era, reason: why });
    })();
    return session.closing;
  }

  #sweepIdle(idleMs: number): void {
    const now = Date.now();
    for (const s of this.#byPoolId.values()) {
      if (s.active === 0 && s.exchanges.size === 0 && now - s.lastSeen >= idleMs) void this.#closeSession(s, "idle");
    }
  }

  #listChanged(kind: "tools" | "resources" | "prompts", sessionId: string | undefined): void {
    const only = sessionId === undefined ? undefined : this.#byPoolId.get(sessionId);
    if (sessionId !== undefined && !only) return;
    for (const s of only ? [only] : this.#byPoolId.values()) {
      const server = s.server;
      if (!server) continue;
      const sent = kind === "tools" ? server.sendToolListChanged() : kind === "resources" ? server.sendResourceListChanged() : server.sendPromptListChanged();
      void Promise.resolve(sent).catch(() => {});
    }
    if (!only || only.era === "modern") {
      const notify = this.#modern.notify;
      if (kind === "tools") notify.toolsChanged();
      else if (kind === "resources") notify.resourcesChanged();
      else notify.promptsChanged();
    }
  }

  #reject(req: IncomingMessage, res: ServerResponse, status: number, reason: string, headers: Record<string, string> = {}): void {
    this.#rejected(req, status, reason);
    if (res.headersSent) return void res.end();
    // The body says no more than the status does (a 401 never says which part failed).
    res.writeHead(status, { "Content-Type": "application/json", ...headers });
    res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message: STATUS_TEXT[status] ?? "Error" }, id: null }));
  }

  #rejected(req: IncomingMessage | Request, status: number, reason: string): void {
    const method = req.method;
    const path = "url" in req && req.url ? (req.url.startsWith("http") ? new URL(req.url).pathname : req.url.split("?", 1)[0]) : undefined;
    this.#log({ event: "request.rejected", status, reason, method, path });
  }

  #log(event: GatewayLogEvent): void {
    try {
      this.#options.log?.(event);
    } catch {
      // A logger that throws must not take a request down with it.
    }
  }

  async #close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const [name, fn] of Object.entries(this.#onPoolEvent)) this.pool.off(name, fn);
    const stopped = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    // Drain: requests in flight get up to the pool's drain deadline, then every stream is cut.
    const until = Date.now() + this.pool.config.limits.drainTimeoutMs;
    while (this.#inFlight > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    await Promise.allSettled([...this.#byPoolId.values()].map((s) => this.#closeSession(s, "gateway")));
    await this.#modern.close().catch(() => {});
    this.#http.closeAllConnections();
    await stopped;
    this.#log({ event: "gateway.closed" });
  }
}

const STATUS_TEXT: Record<number, string> = { 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 413: "Payload Too Large", 503: "Service Unavailable" };

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { "Content-Type": "text/plain; charset=utf-8" });
  res.end(text);
}

function jsonRpcError(status: number, code: number, message: string): Response {
  return new Response(JSON.stringify({ jsonrpc: "2.0", error: { code, message }, id: null }), { status, headers: { "Content-Type": "application/json" } });
}

function isInitialize(body: unknown): boolean {
  const first = Array.isArray(body) ? body[0] : body;
  return first !== null && typeof first === "object" && (first as { method?: unknown }).method === "initialize";
}

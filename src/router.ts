/**
 * The router: a pool name or a URI → the server that serves it → the group whose connections carry the
 * request. It reads the catalogs (the pool's, or a session's view over them) and never sends anything.
 */
import type { Catalogs, PoolPrompt, PoolTool } from "./catalogs.js";
import type { PoolConfig, ServerConfig } from "./config.js";
import { McpPoolError } from "./errors.js";
import type { ServerGroup, GroupHost } from "./server-group.js";
import type { Servers } from "./servers.js";
import type { Session, Sessions } from "./sessions.js";

export class Router {
  readonly #config: PoolConfig;
  readonly #catalogs: Catalogs;
  readonly #sessions: Sessions;
  readonly #servers: Servers;

  constructor(config: PoolConfig, catalogs: Catalogs, sessions: Sessions, servers: Servers) {
    this.#config = config;
    this.#catalogs = catalogs;
    this.#sessions = sessions;
    this.#servers = servers;
  }

  /** The catalogs a session sees: its own lists of its session-scoped servers over the pool's. */
  view(sessionId: string | undefined): Catalogs {
    return (sessionId === undefined ? undefined : this.#sessions.get(sessionId)?.catalogs) ?? this.#catalogs;
  }

  tool(name: string, sessionId: string | undefined): PoolTool | undefined {
    return this.view(sessionId).resolveTool(name);
  }

  prompt(name: string, sessionId: string | undefined): PoolPrompt | undefined {
    return this.view(sessionId).resolvePrompt(name);
  }

  /**
   * The server a URI goes to: `server` if given; else the first configured server that listed that exact
   * URI, else the first whose resource template matches it (see Catalogs.routeUri).
   */
  uri(uri: string, server: string | undefined, sessionId: string | undefined): ServerConfig | McpPoolError {
    if (server !== undefined) {
      return this.#config.servers[server] ?? new McpPoolError("RESOURCE_NOT_FOUND", `no server named "${server}" in the pool`, { server });
    }
    const owner = this.view(sessionId).routeUri(uri);
    if (owner !== undefined) return this.#config.servers[owner]!;
    return new McpPoolError("RESOURCE_NOT_FOUND", `no server in the pool lists the resource ${JSON.stringify(uri)} or a template that matches it`);
  }

  /**
   * A name no catalog resolves. A server that has never listed cannot resolve its names yet: if the name
   * would be one of its (by its prefix or an alias), the server is unavailable; otherwise there is no such name.
   */
  notFound(kind: "tools" | "prompts", name: string): McpPoolError {
    const unlisted = this.#catalogs.unlistedOwner(kind, name);
    if (unlisted) {
      // Why not, if it tried: its last connect error (a server that cannot start, a pinned revision it does not offer).
      const last = this.#servers.connectErrors.get(unlisted.server);
      const message = `server "${unlisted.server}" has not become ready yet${last ? `: ${last.error.message}` : ""}`;
      return new McpPoolError("SERVER_UNAVAILABLE", message, { server: unlisted.server, tool: unlisted.name, ...(last ? { cause: last.cause } : {}) });
    }
    if (kind === "prompts") return new McpPoolError("PROMPT_NOT_FOUND", `no prompt named "${name}" in the pool`, { tool: name });
    return new McpPoolError("TOOL_NOT_FOUND", `no tool named "${name}" in the pool`, { tool: name });
  }

  /** Whether some session-scoped server has not listed its catalogs to this session (or the session is not open yet). */
  sessionUnlisted(sessionId: string): boolean {
    const catalogs = this.#sessions.get(sessionId)?.catalogs;
    for (const server of this.#servers.list) if (server.scope === "session" && !catalogs?.has(server.name)) return true;
    return false;
  }

  /** The group that carries a request to `server`: the session's own for a session-scoped server, else the shared one. */
  group(server: ServerConfig, session: Session | undefined, host: GroupHost): ServerGroup | McpPoolError {
    if (server.scope === "session") {
      if (!session) return new McpPoolError("INVALID_ARGUMENTS", `server "${server.name}" is session-scoped: call it with a sessionId or through pool.session(id)`, { server: server.name });
      return session.group(server, host);
    }
    return this.#servers.shared(server.name)!;
  }
}

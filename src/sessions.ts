/**
 * Sessions: per-(session, server) connections for `scope: "session"` servers, reference-counted
 * so that a session with calls in flight is never evicted.
 */
import type { Catalog } from "./catalog.js";
import type { ServerConfig } from "./config.js";
import { ServerGroup, type GroupHost } from "./server-group.js";

export interface SessionOptions {
  /**
   * HTTP headers for this session's own connections to session-scoped servers (merged over the server's).
   * Fixed while the session is open: other headers for an open session are INVALID_ARGUMENTS (names
   * compare case-insensitively); a handle without headers uses the open session as it is.
   */
  headers?: Record<string, string>;
}

export class Session {
  readonly id: string;
  readonly headers: Record<string, string>;
  /** The last headers object a handle gave that matched `headers` (see checkHeaders in pool.ts). */
  acceptedHeaders: Readonly<Record<string, string>> | undefined;
  readonly groups = new Map<string, ServerGroup>();
  /**
   * This session's view of the tools, once one of its connections has listed them: a session-scoped
   * server may list different tools to different callers (per-user tools over HTTP).
   */
  catalog: Catalog | undefined;
  /** Calls in flight through this session (any server). */
  active = 0;
  lastUsed = Date.now();
  closing: Promise<void> | undefined;

  constructor(id: string, options: SessionOptions = {}) {
    this.id = id;
    this.headers = { ...options.headers };
  }

  /** This session's own group for a session-scoped server, opened on first use. */
  group(server: ServerConfig, host: GroupHost): ServerGroup {
    let group = this.groups.get(server.name);
    if (!group) {
      group = new ServerGroup(server, host, this.id, this.headers);
      this.groups.set(server.name, group);
    }
    return group;
  }

  get connections(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.connections.length;
    return n;
  }
}

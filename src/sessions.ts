/**
 * Sessions: their lifecycle (open, close, idle eviction, `limits.maxSessions`) and, per session, its own
 * connections to `scope: "session"` servers and its own view of the catalogs. A session with calls in
 * flight is never evicted.
 */
import type { Catalogs } from "./catalogs.js";
import type { PoolConfig, ServerConfig } from "./config.js";
import { McpPoolError } from "./errors.js";
import { ServerGroup, type GroupHost } from "./server-group.js";
import type { HeadersFunction, RequestHandlers } from "./server-requests.js";
import { sameHeaders } from "./validate.js";

export interface SessionOptions extends RequestHandlers {
  /**
   * HTTP headers for this session's own connections to session-scoped servers (merged over the server's).
   * Fixed while the session is open: other headers for an open session are INVALID_ARGUMENTS (names
   * compare case-insensitively); a handle without headers uses the open session as it is.
   */
  /**
   * Or a function, awaited before each connect and reconnect of this session's own connections (with
   * `{ server, sessionId }`): fresh credentials. Its headers go over the pool's and the server's. What it
   * throws fails that connect attempt (the error in the message). Fixed while the session is open (compared by identity).
   */
  headers?: Record<string, string> | HeadersFunction;
}

export class Session {
  readonly id: string;
  readonly headers: Record<string, string>;
  /** Its headers when given as a function (then `headers` is empty). */
  readonly headersFn: HeadersFunction | undefined;
  /** Its handlers for requests from servers (fixed while it is open, as its headers are). */
  readonly handlers: RequestHandlers;
  readonly hasHandlers: boolean;
  /** The last headers object a handle gave that matched `headers` (see Sessions.open). */
  acceptedHeaders: Readonly<Record<string, string>> | undefined;
  readonly groups = new Map<string, ServerGroup>();
  /**
   * This session's view of the catalogs, once one of its connections has listed: a session-scoped server
   * may list different things to different callers (per-user tools over HTTP).
   */
  catalogs: Catalogs | undefined;
  /** Resources this session subscribed to on shared servers, as `server` → URIs: unsubscribed when it closes. */
  readonly sharedSubscriptions = new Map<string, Set<string>>();
  /** Calls in flight through this session (any server). */
  active = 0;
  lastUsed = Date.now();
  closing: Promise<void> | undefined;

  constructor(id: string, options: SessionOptions = {}) {
    this.id = id;
    const headers = options.headers;
    this.headersFn = typeof headers === "function" ? headers : undefined;
    this.headers = typeof headers === "function" ? {} : { ...headers };
    const handlers: RequestHandlers = {};
    if (options.onSampling !== undefined) handlers.onSampling = options.onSampling;
    if (options.onElicitation !== undefined) handlers.onElicitation = options.onElicitation;
    if (options.roots !== undefined) handlers.roots = options.roots;
    this.handlers = handlers;
    this.hasHandlers = Object.keys(handlers).length > 0;
  }

  /** This session's own group for a session-scoped server, opened on first use. */
  group(server: ServerConfig, host: GroupHost): ServerGroup {
    let group = this.groups.get(server.name);
    if (!group) {
      group = new ServerGroup(server, host, this.id, this.headersFn ?? this.headers, this.handlers);
      this.groups.set(server.name, group);
    }
    return group;
  }
}

export interface SessionEvents {
  opened(session: Session): void;
  /** The session's connections are closed; `shared` subscriptions it held are for the pool to end. */
  closed(session: Session): void;
}

export class Sessions {
  readonly #limits: PoolConfig["limits"];
  readonly #events: SessionEvents;
  readonly #open = new Map<string, Session>();
  /** Sessions closing on their own (close(), idle, evicted); the id may already name a new session. */
  readonly #closing = new Set<Session>();

  constructor(limits: PoolConfig["limits"], events: SessionEvents) {
    this.#limits = limits;
    this.#events = events;
  }

  get(id: string): Session | undefined {
    return this.#open.get(id);
  }

  /** Sessions open and not closing. */
  get live(): number {
    let n = 0;
    for (const s of this.#open.values()) if (!s.closing) n++;
    return n;
  }

  /**
   * The open session `id`, or a new one (evicting the idlest session at the limit).
   * @throws McpPoolError SESSION_LIMIT at the limit with no idle session; INVALID_ARGUMENTS for other headers.
   */
  open(id: string, options: SessionOptions | undefined): Session {
    let session = this.#open.get(id);
    if (session && !session.closing) {
      checkHeaders(session, options);
      return session;
    }
    if (this.live >= this.#limits.maxSessions) {
      const victim = this.#idlest();
      if (!victim) throw new McpPoolError("SESSION_LIMIT", `${this.#limits.maxSessions} sessions are open and none is idle`);
      void this.close(victim.id);
    }
    session = new Session(id, options);
    this.#open.set(id, session);
    this.#events.opened(session);
    return session;
  }

  /** Lets the session's calls finish (up to `limits.drainTimeoutMs`), then closes its connections. */
  async close(id: string): Promise<void> {
    const session = this.#open.get(id);
    if (!session) return;
    if (!session.closing) {
      this.#closing.add(session);
      session.closing = (async () => {
        await waitUntil(() => session.active === 0, this.#limits.drainTimeoutMs);
        await Promise.all([...session.groups.values()].map((g) => g.close("CONNECTION_LOST")));
        if (this.#open.get(id) === session) this.#open.delete(id);
        this.#closing.delete(session);
        this.#events.closed(session);
      })();
    }
    await session.closing;
  }

  /** Closes sessions idle longer than `limits.sessionIdleTimeoutMs`. */
  sweep(now: number): void {
    const idleMs = this.#limits.sessionIdleTimeoutMs;
    for (const s of this.#open.values()) {
      if (!s.closing && s.active === 0 && now - s.lastUsed >= idleMs) void this.close(s.id);
    }
  }

  /** Every session's groups, closing sessions' included. */
  *groups(): Iterable<ServerGroup> {
    for (const s of this.#open.values()) yield* s.groups.values();
    for (const s of this.#closing) if (this.#open.get(s.id) !== s) yield* s.groups.values();
  }

  /** The pool closes: every session's connections close with it; a session already closing reports its own end. */
  async closeAll(): Promise<void> {
    const closing = [...this.#closing].map((s) => s.closing);
    const open = [...this.#open.values()].filter((s) => !s.closing);
    await Promise.all(open.flatMap((s) => [...s.groups.values()].map((g) => g.close("POOL_CLOSED"))));
    for (const s of open) this.#events.closed(s);
    await Promise.all(closing);
    this.#open.clear();
  }

  #idlest(): Session | undefined {
    let best: Session | undefined;
    for (const s of this.#open.values()) {
      if (s.closing || s.active > 0) continue;
      if (!best || s.lastUsed < best.lastUsed) best = s;
    }
    return best;
  }
}

/**
 * A session's headers are fixed while it is open (they are its connections' credentials): a caller
 * that gives other headers for it is refused; one that gives none uses the session as it is.
 */
export function checkHeaders(session: Session, options: SessionOptions | undefined): void {
  for (const name of ["onSampling", "onElicitation", "roots"] as const) {
    const given = options?.[name];
    if (given !== undefined && given !== session.handlers[name]) {
      throw new McpPoolError("INVALID_ARGUMENTS", `session "${session.id}" is open with other ${name}; a session's handlers are fixed until it closes`);
    }
  }
  const headers = options?.headers;
  if (typeof headers === "function" || session.headersFn !== undefined) {
    if (headers === undefined || headers === session.headersFn) return;
    throw new McpPoolError("INVALID_ARGUMENTS", `session "${session.id}" is open with other headers; a session's headers are fixed until it closes`);
  }
  // A handle's headers are its own frozen copy: once found the same, that object is not compared again.
  if (headers === undefined || headers === session.acceptedHeaders) return;
  if (sameHeaders(session.headers, headers)) {
    session.acceptedHeaders = headers;
    return;
  }
  // The message names no header: their values are credentials.
  throw new McpPoolError("INVALID_ARGUMENTS", `session "${session.id}" is open with other headers; a session's headers are fixed until it closes`);
}

async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
}

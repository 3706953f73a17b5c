/**
 * `McpPool`: the facade. Routes calls to server groups, keeps the catalog, bounds workers,
 * sessions and the queue, and closes everything it started.
 */
import { EventEmitter } from "node:events";
import type { CallToolResult, Progress } from "@modelcontextprotocol/client";
import { backoffDelay } from "./common/backoff.js";
import { applySafely } from "./callbacks.js";
import { Catalog, NAME_SEPARATOR, type PoolTool } from "./catalog.js";
import { parseConfig, type PoolConfig, type PoolConfigInput, type ServerConfig } from "./config.js";
import type { Connection } from "./connection.js";
import { McpPoolError } from "./errors.js";
import { installErrorTransfer, wasNotSent, type ConnectionState, type HostEvent, type ServerInfo, type Verdict, type WireError } from "./common/protocol.js";
import { ServerGroup, type GroupHost, type Waiter } from "./server-group.js";
import { Session, type SessionOptions } from "./sessions.js";
import { Supervisor } from "./supervisor.js";
import { snapshot, type PoolStats } from "./stats.js";
import { argsProblem, readCall, sameHeaders, sessionIdProblem, sessionOptionsProblem, type CheckedCallOptions } from "./validate.js";

installErrorTransfer((wire) => McpPoolError.fromWire(wire));

/** Anything here that is not as typed makes the call reject with INVALID_ARGUMENTS, before it is counted or sent. */
export interface CallToolOptions {
  /** Route to this session's own connections for `scope: "session"` servers (1 to 256 characters, as for `pool.session(id)`). */
  sessionId?: string;
  /** Deadline for this call, in ms (above 0, at most 2^31-1). Default: the server's `toolCallTimeoutMs`. Leads to TIMEOUT. */
  timeoutMs?: number;
  /** Cancels the call, on the server too (`notifications/cancelled`). Leads to ABORTED. */
  signal?: AbortSignal;
  /**
   * Receives the server's MCP progress notifications for this call. What it throws (or its promise
   * rejects with) is reported as a process warning (`McpPoolWarning`) and changes nothing for the call.
   */
  onProgress?: (progress: Progress) => void;
}

/** A session's view of the pool: calls to session-scoped servers use its own connections. */
export interface PoolSession {
  readonly id: string;
  /**
   * The tools this session sees: for its session-scoped servers, what their connections with this
   * session's headers list (opened here if need be, and waited for as a call would), else the pool's list;
   * for shared servers, the pool's. Another session's own tools never appear here, nor resolve in callTool.
   */
  listTools(): Promise<PoolTool[]>;
  callTool(name: string, args?: Record<string, unknown>, options?: Omit<CallToolOptions, "sessionId">): Promise<CallToolResult>;
  /** Lets this session's calls finish (up to `limits.drainTimeoutMs`), then closes its connections. */
  close(): Promise<void>;
}

/** Payload of every pool event. */
export interface PoolEvent {
  server?: string;
  connectionId?: string;
  sessionId?: string;
  pid?: number;
  error?: unknown;
  version?: number;
  /** `log` events: the MCP log level (e.g. "warning"), the logger's name if any, and the message. */
  level?: string;
  logger?: string;
  data?: unknown;
}

/** How often idle sessions and surplus replicas are looked for (more often for short idle timeouts). */
const SWEEP_MS = 1_000;
const MIN_SWEEP_MS = 25;

/**
 * Creates a pool and waits until every server is ready or has failed its first attempt
 * (failed servers keep retrying in the background). `input` is typed from the zod schema, so a config
 * literal with an unknown key or a wrongly typed option does not compile; it is validated at run time too.
 * @throws McpPoolError CONFIG_INVALID when the config is invalid; nothing is started then.
 */
export async function createPool(input: PoolConfigInput): Promise<McpPool> {
  const config = parseConfig(input);
  const pool = new McpPool(config);
  await pool.ready();
  return pool;
}

export class McpPool extends EventEmitter {
  readonly config: PoolConfig;
  readonly #engine: Engine;

  /** Prefer `createPool`, which validates the config and waits for the servers. */
  constructor(config: PoolConfig) {
    super();
    this.config = config;
    this.#engine = new Engine(config, this);
  }

  /** Resolves once every server is ready or has failed its first attempt. */
  ready(): Promise<void> {
    return this.#engine.ready();
  }

  /**
   * Listeners are the user's code, called from the pool's own port listeners and timers: each runs on
   * its own, and what one throws (or its promise rejects with) is reported as a process warning, not
   * thrown into the pool (which would end the host, or cut its bookkeeping short).
   */
  override emit(eventName: string | symbol, ...args: unknown[]): boolean {
    if (eventName === "error") return super.emit(eventName, ...args);
    const listeners = this.rawListeners(eventName);
    for (const listener of listeners) applySafely(listener as (...a: never[]) => unknown, this, args, `a "${String(eventName)}" listener`);
    return listeners.length > 0;
  }

  /** Every tool of every server, under its unique pool name. */
  async listTools(): Promise<PoolTool[]> {
    return this.#engine.catalog.list();
  }

  /**
   * Calls a tool by its pool name. Resolves with the server's CallToolResult as sent (a result
   * with `isError: true` included); rejects only with McpPoolError.
   */
  callTool(name: string, args: Record<string, unknown> = {}, options: CallToolOptions = {}): Promise<CallToolResult> {
    return this.#engine.call(name, args, options);
  }

  /**
   * A handle on one session (opened on its first call). The only method that throws rather than
   * rejects, since it returns the handle at once.
   * @throws McpPoolError INVALID_ARGUMENTS for an id that is not a string of 1 to 256 characters, bad
   * options, or headers other than those of the session already open under this id.
   */
  session(id: string, options: SessionOptions = {}): PoolSession {
    return this.#engine.sessionHandle(id, options);
  }

  /** A plain, JSON-serialisable snapshot. */
  stats(): PoolStats {
    return this.#engine.stats();
  }

  /**
   * What server `name` said of itself at the last handshake of any of its connections: protocol version,
   * `serverInfo` (name, version, title), `instructions` (for an agent's prompt) and capabilities.
   * `undefined` before its first connect, or for a name that is not a configured server.
   */
  serverInfo(name: string): ServerInfo | undefined {
    return this.#engine.serverInfos.get(name);
  }

  /**
   * Stops admitting calls (POOL_CLOSED), lets calls in flight finish up to `limits.drainTimeoutMs`,
   * then closes every connection in its own worker. Idempotent: repeat calls get the same promise.
   */
  close(): Promise<void> {
    return this.#engine.close();
  }
}

/** Per-call bookkeeping, reused for the retry. */
interface CallState {
  entry: PoolTool;
  server: ServerConfig;
  args: Record<string, unknown>;
  /** The caller's options, as read and checked once (see readCall). */
  options: CheckedCallOptions;
  deadline: number;
  session: Session | undefined;
  retried: boolean;
  /** The caller's promise. */
  resolve: (result: CallToolResult) => void;
  reject: (error: McpPoolError) => void;
}

class Engine implements GroupHost {
  readonly catalog: Catalog;
  readonly supervisor: Supervisor;
  readonly maxInFlightPerConnection: number;
  readonly acquireTimeoutMs: number;
  readonly maxQueue: number;
  readonly maxMessageBytes: number;
  readonly workerNice: number;
  queued = 0;
  /** Per server: what it said of itself at the last handshake of any of its connections. */
  readonly serverInfos = new Map<string, ServerInfo>();
  /** Per server: its era as its connections last found it, handed to every new connection (see Verdict). */
  readonly #verdicts = new Map<string, Verdict>();
  /** Per server: why its last connect attempt failed, until one of its connections is ready. */
  readonly #connectErrors = new Map<string, WireError>();

  readonly #config: PoolConfig;
  readonly #emitter: EventEmitter;
  readonly #servers: ServerConfig[];
  readonly #shared = new Map<string, ServerGroup>();
  readonly #sessions = new Map<string, Session>();
  /** Sessions closing on their own (close(), idle, evicted); the id may already name a new session. */
  readonly #closingSessions = new Set<Session>();
  /** Groups waiting for a worker slot, FIFO. */
  readonly #slotQueue: ServerGroup[] = [];
  /** Session-scoped (and min-0) servers: a short-lived connection that lists their tools. */
  readonly #discovery = new Map<string, ServerGroup>();
  #discoveryState = new Map<string, ConnectionState>();
  /** Discoveries waiting (for a slot, a connect, their backoff): woken when the pool closes. */
  readonly #discoveryWakes = new Set<() => void>();
  #slots = 0;
  #ids = 0;
  #ready: Promise<void>;
  #closing: Promise<void> | undefined;
  #sweep: NodeJS.Timeout;
  readonly counts = { total: 0, ok: 0, failed: 0, inFlight: 0, serverCrashes: 0, workerCrashes: 0 };
  #drained: (() => void) | undefined;

  constructor(config: PoolConfig, emitter: EventEmitter) {
    this.#config = config;
    this.#emitter = emitter;
    const { limits } = config;
    this.maxInFlightPerConnection = limits.maxInFlightPerConnection;
    this.acquireTimeoutMs = limits.acquireTimeoutMs;
    this.maxQueue = limits.maxQueue;
    this.maxMessageBytes = Math.floor(limits.maxMessageMb * 1024 * 1024);
    this.workerNice = limits.workerNice;
    this.#servers = Object.values(config.servers);
    this.catalog = new Catalog(this.#servers);
    this.supervisor = new Supervisor(limits.maxWorkers, limits.workerHeapMb, limits.workerHeartbeatMs);
    const firsts: Promise<void>[] = [];
    for (const server of this.#servers) {
      if (server.scope === "shared" && server.connections.min > 0) {
        const group = new ServerGroup(server, this);
        this.#shared.set(server.name, group);
        group.fill();
        firsts.push(group.filled());
      } else {
        if (server.scope === "shared") this.#shared.set(server.name, new ServerGroup(server, this));
        firsts.push(this.#discover(server));
      }
    }
    // Until then, contested names go by config order; from then on, a name handed out stays put.
    this.#ready = Promise.all(firsts).then(() => this.catalog.seal());
    // Sweep often enough that short idle timeouts are honoured close to on time.
    let shortest = limits.sessionIdleTimeoutMs;
    if (limits.minIdleBeforeEvictionMs > 0) shortest = Math.min(shortest, limits.minIdleBeforeEvictionMs);
    for (const s of this.#servers) if (s.connections.max > s.connections.min) shortest = Math.min(shortest, s.connections.idleTimeoutMs);
    this.#sweep = setInterval(() => this.#sweepIdle(), Math.max(MIN_SWEEP_MS, Math.min(SWEEP_MS, Math.floor(shortest / 4))));
    this.#sweep.unref();
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * Lists the tools of a server that keeps no connection open (session-scoped, or shared with
   * `connections.min` 0) through a temporary connection with the server's own headers. Resolves after the
   * first attempt, ready or failed; a failed one is retried in the background with the server's reconnect
   * backoff, then its probes, until the tools are listed (by this or any connection of the server) or the
   * pool closes. Waiting for a worker slot is not an attempt and has no deadline: at the worker cap
   * discoveries take turns, each freeing its slot when done; only the connect itself has connectTimeoutMs.
   */
  #discover(server: ServerConfig): Promise<void> {
    let attempted!: () => void;
    const first = new Promise<void>((resolve) => (attempted = resolve));
    this.#discoveryState.set(server.name, "connecting");
    void (async () => {
      const { maxAttempts, initialDelayMs, maxDelayMs, probeIntervalMs } = server.reconnect;
      for (let failures = 0; ; ) {
        const ready = await this.#discoverOnce(server, attempted);
        attempted();
        if (ready || this.#closing || this.catalog.has(server.name)) return;
        failures++;
        const probing = failures > maxAttempts;
        this.#discoveryState.set(server.name, probing ? "failed" : "reconnecting");
        // As a connection's host does: full-jitter exponential backoff for maxAttempts, then probes.
        const delay = probing ? probeIntervalMs : backoffDelay(failures, initialDelayMs, maxDelayMs);
        let timer!: NodeJS.Timeout;
        await this.#discoveryWait(new Promise<void>((resolve) => (timer = setTimeout(resolve, delay).unref())));
        clearTimeout(timer);
        // Listed meanwhile by a connection of its own (a session's, an on-demand replica): nothing left to do.
        if (this.#closing || this.catalog.has(server.name)) return;
      }
    })();
    return first;
  }

  /**
   * One discovery attempt: a worker slot (however long that takes), then one connect. Whether it listed the
   * tools. A slot wait longer than connectTimeoutMs calls `waitedLong`: createPool() does not wait for it
   * (at the worker cap, many lazy servers would otherwise hold it for turns of connectTimeoutMs each).
   */
  async #discoverOnce(server: ServerConfig, waitedLong: () => void): Promise<boolean> {
    if (this.#closing) return false;
    const group = new ServerGroup({ ...server, connections: { ...server.connections, min: 1, max: 1 } }, this);
    this.#discovery.set(server.name, group);
    group.fill();
    if (!group.connections[0]) {
      const long = setTimeout(waitedLong, server.connectTimeoutMs);
      long.unref();
      await this.#discoveryWait(group.opened());
      clearTimeout(long);
    }
    const conn = group.connections[0];
    if (conn) await this.#discoveryWait(conn.settled);
    const ready = conn?.state === "ready";
    if (ready) this.#discoveryState.set(server.name, "ready");
    if (this.#discovery.get(server.name) === group) this.#discovery.delete(server.name);
    void group.close("CONNECTION_LOST");
    return ready;
  }

  /** Waits for `promise`, or for the pool to close (see #close), whichever comes first. */
  #discoveryWait(promise: Promise<void>): Promise<void> {
    if (this.#closing) return Promise.resolve();
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    this.#discoveryWakes.add(wake);
    return Promise.race([promise, woken]).finally(() => this.#discoveryWakes.delete(wake));
  }

  // ---- calls -------------------------------------------------------------------------------

  /**
   * A call from `callTool` or, with `handleId` and `handleOptions`, from a session handle. Everything the
   * caller passed is checked before anything is counted, opened or sent.
   */
  call(name: string, args: Record<string, unknown>, options: CallToolOptions, handleId?: string, handleOptions?: SessionOptions, listed = false): Promise<CallToolResult> {
    if (this.#closing) return reject("POOL_CLOSED", "pool is closed", undefined, name);
    const checked = readCall(name, options);
    if (typeof checked === "string") return reject("INVALID_ARGUMENTS", checked, undefined, undefined);
    const entry = this.#view(handleId ?? checked.sessionId).resolve(name);
    if (!entry) {
      const sessionId = handleId ?? checked.sessionId;
      // The name may be one of the session's own tools that its connections have not listed yet (a server
      // whose tools depend on the caller): list them first, as session.listTools() would, then look again.
      if (sessionId !== undefined && !listed && this.#sessionUnlisted(sessionId)) return this.#callAfterListing(name, args, options, checked.timeoutMs, sessionId, handleId, handleOptions);
      return this.#notFound(name);
    }
    const server = this.#config.servers[entry.server]!;
    const badArgs = argsProblem(args);
    if (badArgs !== undefined) return reject("INVALID_ARGUMENTS", badArgs, server.name, entry.tool.name);
    if (checked.signal?.aborted) return reject("ABORTED", "aborted before the call started", server.name, entry.tool.name);
    const timeoutMs = checked.timeoutMs ?? server.toolCallTimeoutMs;
    const sessionId = handleId ?? checked.sessionId;
    if (server.scope === "session" && sessionId === undefined) {
      return reject("INVALID_ARGUMENTS", `server "${server.name}" is session-scoped: call it with a sessionId or through pool.session(id)`, server.name, entry.tool.name);
    }
    let session: Session | undefined;
    if (sessionId !== undefined) {
      try {
        session = this.#openSession(sessionId, handleOptions);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const deadline = Date.now() + timeoutMs;
    this.counts.total++;
    this.counts.inFlight++;
    if (session) {
      session.active++;
      session.lastUsed = Date.now();
    }
    // One promise per call, the caller's: the connection settles it through #settle (no promise chain).
    return new Promise<CallToolResult>((resolve, reject) => {
      this.#dispatch({ entry, server, args, options: checked, deadline, session, retried: false, resolve, reject });
    });
  }

  /** A name no catalog resolves: a server that has never listed its tools cannot resolve its names yet (its unavailability), else no such tool. */
  #notFound(name: string): Promise<never> {
    const unlisted = this.#unlistedOwner(name);
    if (unlisted) {
      // Why not, if it tried: its last connect error (a server that cannot start, a pinned revision it does not offer).
      const last = this.#connectErrors.get(unlisted.server);
      const message = `server "${unlisted.server}" has not become ready yet${last ? `: ${last.message}` : ""}`;
      return Promise.reject(new McpPoolError("SERVER_UNAVAILABLE", message, { server: unlisted.server, tool: unlisted.tool, ...(last ? { cause: new Error(last.message) } : {}) }));
    }
    return reject("TOOL_NOT_FOUND", `no tool named "${name}" in the pool`, undefined, name);
  }

  /** Whether some session-scoped server has not listed its tools to this session (or the session is not open yet). */
  #sessionUnlisted(sessionId: string): boolean {
    const catalog = this.#sessions.get(sessionId)?.catalog;
    for (const server of this.#servers) if (server.scope === "session" && !catalog?.has(server.name)) return true;
    return false;
  }

  /** A call whose name the session's view may hold once its own connections have listed their tools (see call()). */
  async #callAfterListing(name: string, args: Record<string, unknown>, options: CallToolOptions, timeoutMs: number | undefined, sessionId: string, handleId: string | undefined, handleOptions: SessionOptions | undefined): Promise<CallToolResult> {
    await this.#listSessionTools(this.#openSession(sessionId, handleOptions), timeoutMs);
    return this.call(name, args, options, handleId, handleOptions, true);
  }

  /** The tools a session sees: its own lists of its session-scoped servers over the pool's (see Session.catalog). */
  #view(sessionId: string | undefined): Catalog {
    return (sessionId === undefined ? undefined : this.#sessions.get(sessionId)?.catalog) ?? this.catalog;
  }

  /** The server (that has not listed its tools yet) a pool name would belong to, by its prefix or an alias. */
  #unlistedOwner(name: string): { server: string; tool: string } | undefined {
    for (const server of this.#servers) {
      if (this.catalog.has(server.name)) continue;
      let tool: string | undefined;
      for (const [original, o] of Object.entries(server.tools.overrides ?? {})) if (o.alias === name) tool = original;
      if (tool === undefined && server.prefix && name.startsWith(server.prefix + NAME_SEPARATOR)) tool = name.slice(server.prefix.length + NAME_SEPARATOR.length);
      if (tool === undefined) continue;
      const { include, exclude } = server.tools;
      if ((include && !include.includes(tool)) || exclude?.includes(tool)) continue;
      return { server: server.name, tool };
    }
    return undefined;
  }

  /** Ends a call: exactly once per call, with its result or its error. */
  #settle(state: CallState, error: McpPoolError | undefined, result: CallToolResult | undefined): void {
    this.#finish(state);
    if (error) {
      this.counts.failed++;
      state.reject(error);
    } else {
      this.counts.ok++;
      state.resolve(result!);
    }
  }

  #finish(state: CallState): void {
    this.counts.inFlight--;
    if (state.session) {
      state.session.active--;
      state.session.lastUsed = Date.now();
    }
    if (this.counts.inFlight === 0) this.#drained?.();
  }

  /** Routes a call to a connection of its group, now or once one is free; settles it on failure. */
  #dispatch(state: CallState): void {
    // A retry is routed a tick after its first attempt failed: the caller may have aborted meanwhile.
    if (state.options.signal?.aborted) {
      return this.#settle(state, new McpPoolError("ABORTED", "aborted before the call was routed again", { server: state.server.name, tool: state.entry.tool.name }), undefined);
    }
    const group = state.server.scope === "session" ? state.session!.group(state.server, this) : this.#shared.get(state.server.name)!;
    const waiter: Waiter = {
      server: state.server.name,
      tool: state.entry.tool.name,
      deadline: state.deadline,
      timer: undefined,
      signal: state.options.signal,
      onAbort: undefined,
      fail: (error) => this.#settle(state, error, undefined),
      run: (conn: Connection) => {
        const timeoutMs = state.deadline - Date.now();
        if (timeoutMs <= 0) {
          this.#settle(state, new McpPoolError("TIMEOUT", "deadline passed while waiting for a connection", { server: state.server.name, tool: state.entry.tool.name }), undefined);
          return;
        }
        conn.call(state.entry.tool.name, state.args, { timeoutMs, signal: state.options.signal, onProgress: state.options.onProgress }, (error, result) => {
          if (!error) return this.#settle(state, undefined, result);
          const notSent = wasNotSent(error);
          if (notSent ? !this.#closing && state.deadline > Date.now() : error.code === "CONNECTION_LOST" && this.#mayRetry(state)) {
            if (!notSent) state.retried = true;
            // Routed again once the connection that failed it has finished updating its state.
            queueMicrotask(() => this.#dispatch(state));
          } else this.#settle(state, notSent ? withoutNotSent(error) : error, undefined);
        });
      },
    };
    group.acquire(waiter);
  }

  /** A call lost to a crash is retried once, only for tools the server marks read-only or idempotent. */
  #mayRetry(state: CallState): boolean {
    if (state.retried || this.#closing || state.server.retry === "never") return false;
    if (state.deadline <= Date.now() || state.options.signal?.aborted) return false;
    const a = state.entry.tool.annotations;
    return a?.readOnlyHint === true || a?.idempotentHint === true;
  }

  // ---- sessions ----------------------------------------------------------------------------

  /** @throws McpPoolError INVALID_ARGUMENTS: a bad id or options, or headers other than those of the open session. */
  sessionHandle(id: string, options: SessionOptions): PoolSession {
    const problem = sessionIdProblem(id) ?? sessionOptionsProblem(options);
    if (problem !== undefined) throw new McpPoolError("INVALID_ARGUMENTS", problem);
    // The handle keeps what was checked: later changes to the caller's object do not reach it.
    const own: SessionOptions = { ...options };
    if (options.headers !== undefined) own.headers = { ...options.headers };
    const open = this.#sessions.get(id);
    if (open && !open.closing) checkHeaders(open, own);
    return {
      id,
      listTools: async () => {
        await this.#listSessionTools(this.#openSession(id, own));
        return this.#view(id).list();
      },
      callTool: (name, args = {}, callOptions = {}) => this.call(name, args, callOptions, id, own),
      close: () => this.#closeSession(id),
    };
  }

  /**
   * Opens the session's connections to its session-scoped servers that have not listed its tools yet, and
   * waits (as a call would) until each has listed them or failed: what a server lists may depend on who asks.
   */
  async #listSessionTools(session: Session, timeoutMs?: number): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const server of this.#servers) {
      if (server.scope !== "session" || session.catalog?.has(server.name)) continue;
      const group = session.group(server, this);
      waits.push(
        new Promise<void>((resolve) => {
          group.acquire({
            server: server.name,
            tool: "tools/list",
            deadline: Date.now() + (timeoutMs ?? server.connectTimeoutMs + this.acquireTimeoutMs),
            timer: undefined,
            signal: undefined,
            onAbort: undefined,
            // Ready: its tools are in the session's view. Failed: the view keeps the pool's list for that server.
            run: () => resolve(),
            fail: () => resolve(),
          });
        }),
      );
    }
    if (waits.length === 0) return;
    // Not idle while it waits (idle sessions are evicted).
    session.active++;
    try {
      await Promise.all(waits);
    } finally {
      session.active--;
      session.lastUsed = Date.now();
    }
  }

  #openSession(id: string, options: SessionOptions | undefined): Session {
    if (this.#closing) throw new McpPoolError("POOL_CLOSED", "pool is closed");
    let session = this.#sessions.get(id);
    if (session && !session.closing) {
      checkHeaders(session, options);
      return session;
    }
    if (this.#liveSessions() >= this.#config.limits.maxSessions) {
      const victim = this.#idlestSession();
      if (!victim) throw new McpPoolError("SESSION_LIMIT", `${this.#config.limits.maxSessions} sessions are open and none is idle`);
      void this.#closeSession(victim.id);
    }
    session = new Session(id, options);
    this.#sessions.set(id, session);
    this.#emitter.emit("session:open", { sessionId: id } satisfies PoolEvent);
    return session;
  }

  #liveSessions(): number {
    let n = 0;
    for (const s of this.#sessions.values()) if (!s.closing) n++;
    return n;
  }

  #idlestSession(): Session | undefined {
    let best: Session | undefined;
    for (const s of this.#sessions.values()) {
      if (s.closing || s.active > 0) continue;
      if (!best || s.lastUsed < best.lastUsed) best = s;
    }
    return best;
  }

  async #closeSession(id: string): Promise<void> {
    const session = this.#sessions.get(id);
    if (!session) return;
    if (!session.closing) {
      this.#closingSessions.add(session);
      session.closing = (async () => {
        await this.#waitUntil(() => session.active === 0, this.#config.limits.drainTimeoutMs);
        await Promise.all([...session.groups.values()].map((g) => g.close("CONNECTION_LOST")));
        if (this.#sessions.get(id) === session) this.#sessions.delete(id);
        this.#closingSessions.delete(session);
        this.#emitter.emit("session:close", { sessionId: id } satisfies PoolEvent);
      })();
    }
    await session.closing;
  }

  async #waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!predicate() && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
  }

  #sweepIdle(): void {
    const now = Date.now();
    // A session connection can go idle without a call finishing (its queued call was aborted).
    if (this.#slotQueue.length > 0) this.#evictIdleSessionConnection();
    const idleMs = this.#config.limits.sessionIdleTimeoutMs;
    for (const s of this.#sessions.values()) {
      if (!s.closing && s.active === 0 && now - s.lastUsed >= idleMs) void this.#closeSession(s.id);
    }
    for (const group of this.#shared.values()) {
      const { min } = group.config.connections;
      let surplus = group.connections.filter((c) => !c.closing).length - min;
      for (const c of [...group.connections].reverse()) {
        if (surplus <= 0) break;
        if (!c.closing && c.inFlight === 0 && group.waiting === 0 && now - c.lastUsed >= group.config.connections.idleTimeoutMs) {
          void c.close();
          surplus--;
        }
      }
    }
  }

  // ---- worker slots ------------------------------------------------------------------------

  takeSlot(group: ServerGroup): boolean {
    if (this.#slots < this.#config.limits.maxWorkers) {
      this.#slots++;
      return true;
    }
    this.#slotQueue.push(group);
    this.#evictIdleSessionConnection();
    return false;
  }

  releaseSlot(): void {
    this.#slots--;
    while (this.#slotQueue.length > 0 && this.#slots < this.#config.limits.maxWorkers) {
      const group = this.#slotQueue.shift()!;
      this.#slots++;
      group.slotGranted();
    }
  }

  /**
   * At the worker cap: close the least recently used session connection idle for at least
   * `minIdleBeforeEvictionMs` to make room, unless connections already closing will free a worker for
   * every group waiting for one. The sweep tries again while groups wait.
   */
  #evictIdleSessionConnection(): void {
    let victim: Connection | undefined;
    let freeing = 0;
    const idleSince = Date.now() - this.#config.limits.minIdleBeforeEvictionMs;
    for (const group of this.#allGroups()) {
      for (const conn of group.connections) {
        if (conn.closing) {
          freeing++;
          continue;
        }
        if (group.sessionId === undefined || conn.inFlight > 0 || group.waiting > 0 || conn.lastUsed > idleSince) continue;
        if (!victim || conn.lastUsed < victim.lastUsed) victim = conn;
      }
    }
    if (victim && freeing < this.#slotQueue.length) void victim.close();
  }

  /** Withdraws a group's request for a worker slot (its waiting calls are gone). */
  withdrawSlot(group: ServerGroup): void {
    const i = this.#slotQueue.indexOf(group);
    if (i !== -1) this.#slotQueue.splice(i, 1);
  }

  /** Every group holding connections: shared, discovery and every session's (closing ones included). */
  *#allGroups(): Iterable<ServerGroup> {
    yield* this.#shared.values();
    yield* this.#discovery.values();
    for (const s of this.#sessions.values()) yield* s.groups.values();
    for (const s of this.#closingSessions) if (this.#sessions.get(s.id) !== s) yield* s.groups.values();
  }

  nextConnectionId(server: string): string {
    return `${server}#${++this.#ids}`;
  }

  priorFor(server: string): Verdict | undefined {
    return this.#verdicts.get(server);
  }

  // ---- events from connections -------------------------------------------------------------

  connectionEvent(kind: "ready" | "lost" | "failed", conn: Connection, error?: unknown): void {
    if (kind === "lost") this.counts.serverCrashes++;
    if (kind === "ready" && conn.serverInfo) this.serverInfos.set(conn.server, conn.serverInfo);
    if (kind === "ready" && conn.verdict) this.#verdicts.set(conn.server, conn.verdict);
    if (kind === "ready") this.#connectErrors.delete(conn.server);
    else if (kind === "failed" && conn.lastError) this.#connectErrors.set(conn.server, conn.lastError);
    this.#emitter.emit(`connection:${kind}`, eventOf(conn, error));
  }

  workerCrash(conn: Connection, error: unknown): void {
    this.counts.workerCrashes++;
    this.counts.serverCrashes--; // the "lost" that follows is the worker's, not the server's
    this.#emitter.emit("worker:crash", eventOf(conn, error));
  }

  toolsChanged(conn: Connection): void {
    if (!conn.tools) return;
    if (conn.sessionId === undefined) {
      if (this.catalog.update(conn.server, conn.tools)) {
        this.#emitter.emit("tools:changed", { server: conn.server, version: this.catalog.version(conn.server) } satisfies PoolEvent);
      }
      return;
    }
    // A session's connection lists what that session may see: its own view, never the pool's.
    const session = this.#sessions.get(conn.sessionId);
    if (!session || !session.groups.get(conn.server)?.connections.includes(conn)) return;
    session.catalog ??= new Catalog(this.#servers, this.catalog);
    if (session.catalog.update(conn.server, conn.tools)) {
      this.#emitter.emit("tools:changed", { server: conn.server, sessionId: session.id, version: session.catalog.version(conn.server) } satisfies PoolEvent);
    }
  }

  serverLog(conn: Connection, event: Extract<HostEvent, { ev: "log" }>): void {
    const payload: PoolEvent = { server: conn.server };
    if (conn.sessionId !== undefined) payload.sessionId = conn.sessionId;
    payload.level = event.level;
    if (event.logger !== undefined) payload.logger = event.logger;
    payload.data = event.data;
    this.#emitter.emit("log", payload);
  }

  callFinished(conn: Connection): void {
    // At the worker cap, a session connection that just went idle is what a queued group needs.
    if (this.#slotQueue.length > 0 && conn.sessionId !== undefined && conn.inFlight === 0) this.#evictIdleSessionConnection();
  }

  // ---- stats and close ---------------------------------------------------------------------

  stats(): PoolStats {
    return snapshot({
      limits: this.#config.limits,
      servers: this.#servers,
      slots: this.#slots,
      slotQueue: this.#slotQueue.length,
      sessions: this.#liveSessions(),
      counts: this.counts,
      queued: this.queued,
      catalog: this.catalog,
      closed: this.#closing !== undefined,
      groupsOf: (server) => {
        const groups: ServerGroup[] = [];
        const shared = this.#shared.get(server);
        if (shared) groups.push(shared);
        for (const s of this.#sessions.values()) {
          const g = s.groups.get(server);
          if (g) groups.push(g);
        }
        const d = this.#discovery.get(server);
        if (d) groups.push(d);
        return groups;
      },
      discoveryState: (server) => this.#discoveryState.get(server),
      protocolVersion: (server) => this.serverInfos.get(server)?.protocolVersion,
    });
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    clearInterval(this.#sweep);
    for (const wake of this.#discoveryWakes) wake();
    if (this.counts.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.#config.limits.drainTimeoutMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const groups = [...this.#shared.values(), ...this.#discovery.values()];
    for (const s of this.#sessions.values()) groups.push(...s.groups.values());
    for (const s of this.#closingSessions) groups.push(...s.groups.values());
    const closingSessions = [...this.#closingSessions].map((s) => s.closing);
    this.#slotQueue.length = 0;
    await Promise.all(groups.map((g) => g.close("POOL_CLOSED")));
    // A session that was closing already reports its own session:close, once.
    for (const s of this.#sessions.values()) if (!s.closing) this.#emitter.emit("session:close", { sessionId: s.id } satisfies PoolEvent);
    await Promise.all(closingSessions);
    this.#sessions.clear();
    await this.supervisor.destroy();
  }
}

/**
 * An unsent call's error as its caller sees it: NOT_SENT in `data` is the pool's own routing marker
 * (the pool is closing or the deadline passed, so the call is not routed again), not the caller's business.
 */
function withoutNotSent(error: McpPoolError): McpPoolError {
  const { server, tool, mcpCode, cause } = error;
  return new McpPoolError(error.code, error.message, { server, tool, mcpCode, cause });
}

function eventOf(conn: Connection, error?: unknown): PoolEvent {
  const event: PoolEvent = { server: conn.server, connectionId: conn.id };
  if (conn.sessionId !== undefined) event.sessionId = conn.sessionId;
  if (conn.pid !== undefined) event.pid = conn.pid;
  if (error !== undefined) event.error = error;
  return event;
}

/**
 * A session's headers are fixed while it is open (they are its connections' credentials): a caller
 * that gives other headers for it is refused; one that gives none uses the session as it is.
 */
function checkHeaders(session: Session, options: SessionOptions | undefined): void {
  const headers = options?.headers;
  // A handle's headers are its own frozen copy: once found the same, that object is not compared again.
  if (headers === undefined || headers === session.acceptedHeaders) return;
  if (sameHeaders(session.headers, headers)) {
    session.acceptedHeaders = headers;
    return;
  }
  // The message names no header: their values are credentials.
  throw new McpPoolError("INVALID_ARGUMENTS", `session "${session.id}" is open with other headers; a session's headers are fixed until it closes`);
}

function reject(code: McpPoolError["code"], message: string, server: string | undefined, tool: string | undefined): Promise<never> {
  return Promise.reject(new McpPoolError(code, message, { server, tool }));
}

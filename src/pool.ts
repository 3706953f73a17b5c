/**
 * `McpPool`, the facade: the public methods, their options, the pool's events and stats. It admits each
 * request as one `Call` (call.ts) and hands it to the group that serves it (router.ts → server-group.ts);
 * the parts it wires together each live in their own module (admission, sessions, servers, catalogs).
 * Over 400 lines, most of them the public API's documentation (every option and method).
 */
import { EventEmitter } from "node:events";
import type { CallToolResult, LoggingLevel, CompleteRequest, CompleteResult, GetPromptResult, Progress, ReadResourceResult } from "@modelcontextprotocol/client";
import { Admission } from "./admission.js";
import { KINDS } from "./call.js";
import { applySafely } from "./callbacks.js";
import { Catalogs, type CatalogKind, type PoolPrompt, type PoolResource, type PoolResourceTemplate, type PoolTool } from "./catalogs.js";
import { parseConfig, type PoolConfig, type PoolConfigInput } from "./config.js";
import type { Connection } from "./connection.js";
import { McpPoolError } from "./errors.js";
import type { Catalogs as Lists, ServerInfo } from "./common/protocol.js";
import { Router } from "./router.js";
import type { GroupHost, ServerGroup } from "./server-group.js";
import { Servers } from "./servers.js";
import { Sessions, checkHeaders, type Session, type SessionOptions } from "./sessions.js";
import { NO_OPTIONS, POOL_CALLER, Requests, type Caller } from "./requests.js";
import { Supervisor } from "./supervisor.js";
import { snapshot, type PoolStats } from "./stats.js";
import { createTelemetry, loadTelemetry, type Telemetry } from "./telemetry.js";
import { handlersProblem, sessionIdProblem, sessionOptionsProblem } from "./validate.js";
import type { HeadersFunction, RequestHandlers } from "./server-requests.js";

/**
 * What cannot be config (it cannot cross to a worker): the handlers that answer servers' requests
 * (`createPool`'s second argument). A session's own handlers (`pool.session(id, { … })`) come first for
 * its connections and its calls; these answer the rest. A capability (`sampling`, `elicitation`, `roots`)
 * is declared to a server only when a handler for it exists; without one, the server's request is refused
 * with JSON-RPC -32601. See README, "Requests from servers".
 */
export interface PoolOptions extends RequestHandlers {
  /**
   * HTTP headers for every HTTP/SSE connection, awaited before each connect and reconnect (`ctx`:
   * `{ server, sessionId? }`, `sessionId` for a session's own connection): fresh credentials. They go over
   * the server's configured headers; a session's own headers go over them. What it throws (or a value
   * that is not valid headers) fails that connect attempt, its error in the message. An HTTP 401 on a
   * request makes the pool ask once more and reconnect once before the request fails (SERVER_UNAVAILABLE).
   */
  headers?: HeadersFunction;
}

/** Options of every request. Anything here that is not as typed makes it reject with INVALID_ARGUMENTS, before it is counted or sent. */
export interface RequestOptions {
  /** Route to this session's own connections for `scope: "session"` servers (1 to 256 characters, as for `pool.session(id)`). */
  sessionId?: string;
  /** Deadline for this request, in ms (above 0, at most 2^31-1). Default: the server's `toolCallTimeoutMs`. Leads to TIMEOUT. */
  timeoutMs?: number;
  /** Cancels the request, on the server too (`notifications/cancelled`). Leads to ABORTED. */
  signal?: AbortSignal;
}

export interface CallToolOptions extends RequestOptions {
  /**
   * Receives the server's MCP progress notifications for this call. What it throws (or its promise
   * rejects with) is reported as a process warning (`McpPoolWarning`) and changes nothing for the call.
   */
  onProgress?: (progress: Progress) => void;
}

/** Options of resource requests and completions: `server` sends it there instead of routing it by URI. */
export interface ResourceOptions extends RequestOptions {
  server?: string;
}

/** `complete()`'s request: `ref/prompt` names the prompt by its pool name; `ref/resource` is routed like readResource. */
export type CompleteParams = CompleteRequest["params"];

/** A session's view of the pool: requests to session-scoped servers use its own connections. */
export interface PoolSession {
  readonly id: string;
  /**
   * The tools this session sees: for its session-scoped servers, what their connections with this
   * session's headers list (opened here if need be, and waited for as a call would), else the pool's list;
   * for shared servers, the pool's. Another session's own tools never appear here, nor resolve in callTool.
   */
  listTools(): Promise<PoolTool[]>;
  callTool(name: string, args?: Record<string, unknown>, options?: Omit<CallToolOptions, "sessionId">): Promise<CallToolResult>;
  listResources(): Promise<PoolResource[]>;
  listResourceTemplates(): Promise<PoolResourceTemplate[]>;
  readResource(uri: string, options?: Omit<ResourceOptions, "sessionId">): Promise<ReadResourceResult>;
  subscribeResource(uri: string, options?: Omit<ResourceOptions, "sessionId" | "timeoutMs" | "signal">): Promise<void>;
  unsubscribeResource(uri: string, options?: Omit<ResourceOptions, "sessionId" | "timeoutMs" | "signal">): Promise<void>;
  listPrompts(): Promise<PoolPrompt[]>;
  getPrompt(name: string, args?: Record<string, string>, options?: Omit<RequestOptions, "sessionId">): Promise<GetPromptResult>;
  complete(params: CompleteParams, options?: Omit<ResourceOptions, "sessionId">): Promise<CompleteResult["completion"]>;
  /** Lets this session's calls finish (up to `limits.drainTimeoutMs`), then closes its connections and ends its subscriptions. */
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
  /** `resource:updated` events: the resource that changed. */
  uri?: string;
  /** `log` events: the MCP log level (e.g. "warning"), the logger's name if any, and the message. */
  level?: string;
  logger?: string;
  data?: unknown;
}

const LOGGING_LEVELS: readonly LoggingLevel[] = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/** How often idle sessions and surplus replicas are looked for (more often for short idle timeouts). */
const SWEEP_MS = 1_000;
const MIN_SWEEP_MS = 25;

/** The event each catalog kind's change is reported as. */
const CHANGED_EVENT: Record<CatalogKind, string> = { tools: "tools:changed", prompts: "prompts:changed", resources: "resources:changed" };

/**
 * Creates a pool and waits until every server is ready or has failed its first attempt
 * (failed servers keep retrying in the background). `input` is typed from the zod schema, so a config
 * literal with an unknown key or a wrongly typed option does not compile; it is validated at run time too.
 * @throws McpPoolError CONFIG_INVALID when the config is invalid; nothing is started then.
 */
export async function createPool(input: PoolConfigInput, options: PoolOptions = {}): Promise<McpPool> {
  const config = parseConfig(input);
  const problem =
    options === null || typeof options !== "object"
      ? `options must be an object`
      : options.headers !== undefined && typeof options.headers !== "function"
        ? `headers must be a function (fixed headers go in the config)`
        : handlersProblem(options as Record<string, unknown>);
  if (problem !== undefined) throw new McpPoolError("CONFIG_INVALID", `options: ${problem}`);
  // `@opentelemetry/api`, if installed: an optional peer dependency (see telemetry.ts).
  await loadTelemetry();
  const pool = new McpPool(config, options);
  await pool.ready();
  return pool;
}


export class McpPool extends EventEmitter {
  readonly config: PoolConfig;
  readonly #supervisor: Supervisor;
  readonly #admission: Admission;
  readonly #catalogs: Catalogs;
  readonly #sessions: Sessions;
  readonly #servers: Servers;
  readonly #router: Router;
  readonly #requests: Requests;
  readonly #telemetry: Telemetry;
  /** What the server groups need from the pool. */
  readonly #groupHost: GroupHost;
  readonly #ready: Promise<void>;
  readonly #sweep: NodeJS.Timeout;
  #ids = 0;
  #closing: Promise<void> | undefined;
  /** Log levels set per server (setLoggingLevel): applied by every connection of it, at every connect. */
  readonly #logLevels = new Map<string, LoggingLevel>();

  /** Prefer `createPool`, which validates the config and waits for the servers. */
  constructor(config: PoolConfig, options: PoolOptions = {}) {
    super();
    const handlers: RequestHandlers = {};
    if (options.onSampling !== undefined) handlers.onSampling = options.onSampling;
    if (options.onElicitation !== undefined) handlers.onElicitation = options.onElicitation;
    if (options.roots !== undefined) handlers.roots = options.roots;
    this.config = config;
    const { limits } = config;
    const list = Object.values(config.servers);
    this.#supervisor = new Supervisor(limits.maxWorkers, limits.workerHeapMb, limits.workerHeartbeatMs);
    this.#catalogs = new Catalogs(list);
    this.#sessions = new Sessions(limits, {
      opened: (s) => this.emit("session:open", { sessionId: s.id } satisfies PoolEvent),
      closed: (s) => this.#sessionClosed(s),
    });
    this.#admission = new Admission(limits, () => this.#allGroups());
    const admission = this.#admission;
    const sessions = this.#sessions;
    this.#telemetry = createTelemetry(list, {
      inFlight: () => admission.counts.inFlight,
      queued: () => admission.queued,
      workers: () => admission.slots,
      sessions: () => sessions.live,
    });
    this.#groupHost = {
      supervisor: this.#supervisor,
      admission: this.#admission,
      maxMessageBytes: Math.floor(limits.maxMessageMb * 1024 * 1024),
      workerNice: limits.workerNice,
      nextConnectionId: (server) => `${server}#${++this.#ids}`,
      priorFor: (server) => this.#servers.verdicts.get(server),
      connectionEvent: (kind, conn, error) => this.#connectionEvent(kind, conn, error),
      workerCrash: (conn, error) => {
        this.#admission.counts.workerCrashes++;
        this.#admission.counts.serverCrashes--; // the "lost" that follows is the worker's, not the server's
        this.#telemetry.crashed(conn.server);
        this.emit("worker:crash", eventOf(conn, error));
      },
      catalogsChanged: (conn, kinds) => this.#catalogsChanged(conn, kinds),
      serverLog: (conn, level, logger, data) => {
        const payload: PoolEvent = { server: conn.server };
        if (conn.sessionId !== undefined) payload.sessionId = conn.sessionId;
        payload.level = level;
        if (logger !== undefined) payload.logger = logger;
        payload.data = data;
        this.emit("log", payload);
      },
      handlers,
      headers: typeof options.headers === "function" ? options.headers : undefined,
      logLevelFor: (server) => this.#logLevels.get(server),
      resourceUpdated: (conn, uri) => {
        const payload: PoolEvent = { server: conn.server, uri };
        if (conn.sessionId !== undefined) payload.sessionId = conn.sessionId;
        this.emit("resource:updated", payload);
      },
    };
    this.#servers = new Servers(list, this.#groupHost, (server) => this.#catalogs.has(server));
    this.#router = new Router(config, this.#catalogs, this.#sessions, this.#servers);
    this.#requests = new Requests(config, this.#router, this.#sessions, this.#servers, this.#admission, this.#groupHost, this.#telemetry);
    // Until then, contested names go by config order; from then on, a name handed out stays put.
    this.#ready = this.#servers.start().then(() => this.#catalogs.seal());
    // Sweep often enough that short idle timeouts are honoured close to on time.
    let shortest = limits.sessionIdleTimeoutMs;
    if (limits.minIdleBeforeEvictionMs > 0) shortest = Math.min(shortest, limits.minIdleBeforeEvictionMs);
    for (const s of list) if (s.connections.max > s.connections.min) shortest = Math.min(shortest, s.connections.idleTimeoutMs);
    this.#sweep = setInterval(() => this.#sweepIdle(), Math.max(MIN_SWEEP_MS, Math.min(SWEEP_MS, Math.floor(shortest / 4))));
    this.#sweep.unref();
  }

  /** Resolves once every server is ready or has failed its first attempt. */
  ready(): Promise<void> {
    return this.#ready;
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

  // ---- the client surface ----------------------------------------------------------------

  /** Every tool of every server, under its unique pool name. */
  async listTools(): Promise<PoolTool[]> {
    return this.#catalogs.tools();
  }

  /**
   * Calls a tool by its pool name. Resolves with the server's CallToolResult as sent (a result
   * with `isError: true` included); rejects only with McpPoolError.
   */
  callTool(name: string, args: Record<string, unknown> = {}, options: CallToolOptions = {}): Promise<CallToolResult> {
    return this.#requests.callTool(name, args, options, POOL_CALLER);
  }

  /** Every resource every server lists (all pages), with the server that lists it. */
  async listResources(): Promise<PoolResource[]> {
    return this.#catalogs.resources();
  }

  /** Every resource template every server lists. */
  async listResourceTemplates(): Promise<PoolResourceTemplate[]> {
    return this.#catalogs.resourceTemplates();
  }

  /**
   * Reads a resource: from `options.server`, else from the first configured server that listed that exact
   * URI, else from the first whose template matches it. The ReadResourceResult as sent.
   * Rejects with RESOURCE_NOT_FOUND when no server has it (or the server says so).
   */
  readResource(uri: string, options: ResourceOptions = {}): Promise<ReadResourceResult> {
    return this.#requests.resource(KINDS.readResource, uri, options, POOL_CALLER) as Promise<ReadResourceResult>;
  }

  /**
   * Subscribes to a resource's updates ("resource:updated" events `{ server, uri, sessionId? }`). The
   * subscription belongs to the connection that made it and survives its reopen and replacement.
   */
  async subscribeResource(uri: string, options: Omit<ResourceOptions, "timeoutMs" | "signal"> = {}): Promise<void> {
    await this.#requests.subscription("add", uri, options, POOL_CALLER);
  }

  /** Ends a subscription made by `subscribeResource`; resolves at once if there is none. */
  async unsubscribeResource(uri: string, options: Omit<ResourceOptions, "timeoutMs" | "signal"> = {}): Promise<void> {
    await this.#requests.subscription("remove", uri, options, POOL_CALLER);
  }

  /** Every prompt of every server, under its unique pool name (named as tools are). */
  async listPrompts(): Promise<PoolPrompt[]> {
    return this.#catalogs.prompts();
  }

  /** Gets a prompt by its pool name: the GetPromptResult as sent. Rejects with PROMPT_NOT_FOUND for an unknown name. */
  getPrompt(name: string, args: Record<string, string> = {}, options: RequestOptions = {}): Promise<GetPromptResult> {
    return this.#requests.getPrompt(name, args, options, POOL_CALLER);
  }

  /**
   * Argument completion (`completion/complete`): a `ref/prompt` names the prompt by its pool name, a
   * `ref/resource` is routed as readResource routes its URI (or to `options.server`). Resolves with the
   * server's `completion` (`{ values, total?, hasMore? }`).
   */
  complete(params: CompleteParams, options: ResourceOptions = {}): Promise<CompleteResult["completion"]> {
    return this.#requests.complete(params, options, POOL_CALLER);
  }

  /**
   * A handle on one session (opened on its first request). The only method that throws rather than
   * rejects, since it returns the handle at once.
   * @throws McpPoolError INVALID_ARGUMENTS for an id that is not a string of 1 to 256 characters, bad
   * options, or headers other than those of the session already open under this id.
   */
  session(id: string, options: SessionOptions = {}): PoolSession {
    const problem = sessionIdProblem(id) ?? sessionOptionsProblem(options);
    if (problem !== undefined) throw new McpPoolError("INVALID_ARGUMENTS", problem);
    // The handle keeps what was checked: later changes to the caller's object do not reach it.
    const own: SessionOptions = { ...options };
    if (options.headers !== undefined) own.headers = typeof options.headers === "function" ? options.headers : { ...options.headers };
    const open = this.#sessions.get(id);
    if (open && !open.closing) checkHeaders(open, own);
    const caller: Caller = { sessionId: id, handleOptions: own };
    const listed = async <T>(read: (view: Catalogs) => T): Promise<T> => {
      await this.#requests.listSessionCatalogs(caller);
      return read(this.#router.view(id));
    };
    return {
      id,
      listTools: () => listed((v) => v.tools()),
      callTool: (name, args = {}, o = {}) => this.#requests.callTool(name, args, o, caller),
      listResources: () => listed((v) => v.resources()),
      listResourceTemplates: () => listed((v) => v.resourceTemplates()),
      readResource: (uri, o = {}) => this.#requests.resource(KINDS.readResource, uri, o, caller) as Promise<ReadResourceResult>,
      subscribeResource: async (uri, o = {}) => void (await this.#requests.subscription("add", uri, o, caller)),
      unsubscribeResource: async (uri, o = {}) => void (await this.#requests.subscription("remove", uri, o, caller)),
      listPrompts: () => listed((v) => v.prompts()),
      getPrompt: (name, args = {}, o = {}) => this.#requests.getPrompt(name, args, o, caller),
      complete: (params, o = {}) => this.#requests.complete(params, o, caller),
      close: () => this.#sessions.close(id),
    };
  }

  /**
   * Sets the minimum level of the log messages (`log` events) servers send: `server`'s, or every server's.
   * Applied by every connection of it, sessions' included, now and after every reconnect: in the legacy era
   * with `logging/setLevel` (servers with the `logging` capability), in the 2026-07-28 era in each request's
   * `_meta`. Resolves once the open connections have applied it (each within its `connectTimeoutMs`).
   * Rejects with INVALID_ARGUMENTS for an unknown level or server.
   */
  async setLoggingLevel(level: LoggingLevel, options: { server?: string } = {}): Promise<void> {
    if (!LOGGING_LEVELS.includes(level)) throw new McpPoolError("INVALID_ARGUMENTS", `level must be one of ${LOGGING_LEVELS.join(", ")}, not ${JSON.stringify(level)}`);
    const server = options?.server;
    if (server !== undefined && !Object.hasOwn(this.config.servers, server)) throw new McpPoolError("INVALID_ARGUMENTS", `no server named ${JSON.stringify(server)} in the pool`);
    if (this.#closing) throw new McpPoolError("POOL_CLOSED", "pool is closed");
    const names = server === undefined ? Object.keys(this.config.servers) : [server];
    const applying: Promise<void>[] = [];
    for (const name of names) {
      this.#logLevels.set(name, level);
      const timeoutMs = this.config.servers[name]!.connectTimeoutMs;
      for (const group of this.#allGroups()) {
        if (group.config.name === name) for (const conn of group.connections) applying.push(conn.setLoggingLevel(level, timeoutMs));
      }
    }
    await Promise.all(applying);
  }

  /** A plain, JSON-serialisable snapshot. */
  stats(): PoolStats {
    const limits = this.config.limits;
    return snapshot({
      limits,
      servers: this.#servers.list,
      slots: this.#admission.slots,
      slotQueue: this.#admission.slotsWanted,
      sessions: this.#sessions.live,
      counts: this.#admission.counts,
      queued: this.#admission.queued,
      catalogs: this.#catalogs,
      closed: this.#closing !== undefined,
      groupsOf: (server) => {
        const groups: ServerGroup[] = [...this.#servers.groupsOf(server)];
        for (const g of this.#sessions.groups()) if (g.config.name === server && !groups.includes(g)) groups.push(g);
        return groups;
      },
      discoveryState: (server) => this.#servers.discoveryState(server),
      protocolVersion: (server) => this.#servers.infos.get(server)?.protocolVersion,
    });
  }

  /**
   * What server `name` said of itself at the last handshake of any of its connections: protocol version,
   * `serverInfo` (name, version, title), `instructions` (for an agent's prompt) and capabilities.
   * `undefined` before its first connect, or for a name that is not a configured server.
   */
  serverInfo(name: string): ServerInfo | undefined {
    return this.#servers.infos.get(name);
  }

  /**
   * Stops admitting requests (POOL_CLOSED), lets those in flight finish up to `limits.drainTimeoutMs`,
   * then closes every connection in its own worker. Idempotent: repeat calls get the same promise.
   */
  close(): Promise<void> {
    this.#admission.closing = true;
    this.#closing ??= this.#close();
    return this.#closing;
  }

  // ---- what connections report -------------------------------------------------------------

  #connectionEvent(kind: "ready" | "lost" | "failed", conn: Connection, error?: unknown): void {
    const servers = this.#servers;
    if (kind === "lost") {
      this.#admission.counts.serverCrashes++;
      this.#telemetry.restarted(conn.server);
    }
    if (kind === "ready" && conn.serverInfo) servers.infos.set(conn.server, conn.serverInfo);
    if (kind === "ready" && conn.verdict) servers.verdicts.set(conn.server, conn.verdict);
    if (kind === "ready") servers.connectErrors.delete(conn.server);
    else if (kind === "failed" && conn.lastError) servers.connectErrors.set(conn.server, { error: conn.lastError, cause: conn.failureCause() });
    this.emit(`connection:${kind}`, eventOf(conn, error));
  }

  #catalogsChanged(conn: Connection, kinds: readonly (keyof Lists)[]): void {
    const all = conn.catalogs;
    if (!all) return;
    const lists: Partial<Lists> = {};
    for (const kind of kinds) (lists as Record<string, unknown>)[kind] = all[kind];
    let catalogs = this.#catalogs;
    if (conn.sessionId !== undefined) {
      // A session's connection lists what that session may see: its own view, never the pool's.
      const session = this.#sessions.get(conn.sessionId);
      if (!session || !session.groups.get(conn.server)?.connections.includes(conn)) return;
      catalogs = session.catalogs ??= new Catalogs(this.#servers.list, this.#catalogs);
    }
    for (const changed of catalogs.update(conn.server, lists)) {
      const event: PoolEvent = { server: conn.server, version: catalogs.version(conn.server) };
      if (conn.sessionId !== undefined) event.sessionId = conn.sessionId;
      this.emit(CHANGED_EVENT[changed], event);
    }
  }

  /** A session ended: its subscriptions on shared servers end with it, unless the pool holds them too. */
  #sessionClosed(session: Session): void {
    if (!this.#closing) for (const [server, uris] of session.sharedSubscriptions) {
      const group = this.#servers.shared(server);
      for (const uri of uris) {
        const holder = group?.connections.find((c) => c.subscriptions.has(uri));
        if (holder && group) void this.#requests.admit(KINDS.unsubscribe, group.config, undefined, { uri }, NO_OPTIONS, POOL_CALLER, undefined, holder).catch(() => {});
      }
    }
    this.emit("session:close", { sessionId: session.id } satisfies PoolEvent);
  }

  // ---- housekeeping and close ---------------------------------------------------------------

  *#allGroups(): Iterable<ServerGroup> {
    yield* this.#servers.groups();
    yield* this.#sessions.groups();
  }

  #sweepIdle(): void {
    const now = Date.now();
    // A session connection can go idle without a call finishing (its queued call was aborted).
    if (this.#admission.slotsWanted > 0) this.#admission.evictIdleSessionConnection();
    this.#sessions.sweep(now);
    this.#servers.sweep(now);
  }

  async #close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#servers.close();
    this.#admission.closing = true;
    await this.#admission.drain(this.config.limits.drainTimeoutMs);
    this.#admission.clearSlotQueue();
    await Promise.all([...this.#servers.groups()].map((g) => g.close("POOL_CLOSED")).concat(this.#sessions.closeAll()));
    await this.#supervisor.destroy();
    this.#telemetry.close();
  }
}

function eventOf(conn: Connection, error?: unknown): PoolEvent {
  const event: PoolEvent = { server: conn.server, connectionId: conn.id };
  if (conn.sessionId !== undefined) event.sessionId = conn.sessionId;
  if (conn.pid !== undefined) event.pid = conn.pid;
  if (error !== undefined) event.error = error;
  return event;
}

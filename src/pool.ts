/**
 * `McpPool`, the facade: the public methods, their options, the pool's events and stats. It admits each
 * request as one `Call` (call.ts) and hands it to the group that serves it (router.ts → server-group.ts);
 * the parts it wires together each live in their own module (admission, sessions, servers, catalogs).
 */
import { EventEmitter } from "node:events";
import type { CallToolResult, CompleteRequest, CompleteResult, GetPromptResult, Progress, ReadResourceResult, ToolAnnotations } from "@modelcontextprotocol/client";
import { Admission } from "./admission.js";
import { Call, KINDS, type RequestKind } from "./call.js";
import { applySafely } from "./callbacks.js";
import { Catalogs, type CatalogKind, type PoolPrompt, type PoolResource, type PoolResourceTemplate, type PoolTool } from "./catalogs.js";
import { parseConfig, type PoolConfig, type PoolConfigInput, type ServerConfig } from "./config.js";
import type { Connection } from "./connection.js";
import { McpPoolError } from "./errors.js";
import type { Catalogs as Lists, ServerInfo } from "./common/protocol.js";
import { Router } from "./router.js";
import type { GroupHost, ServerGroup } from "./server-group.js";
import { Servers } from "./servers.js";
import { Session, Sessions, checkHeaders, type SessionOptions } from "./sessions.js";
import { Supervisor } from "./supervisor.js";
import { snapshot, type PoolStats } from "./stats.js";
import { argsProblem, readCall, sessionIdProblem, sessionOptionsProblem, type CheckedCallOptions } from "./validate.js";

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
export async function createPool(input: PoolConfigInput): Promise<McpPool> {
  const config = parseConfig(input);
  const pool = new McpPool(config);
  await pool.ready();
  return pool;
}

/** The caller-side identity of a request: whose session, and the handle's options (see #session). */
interface Caller {
  sessionId: string | undefined;
  handleOptions: SessionOptions | undefined;
}

const POOL_CALLER: Caller = { sessionId: undefined, handleOptions: undefined };

export class McpPool extends EventEmitter {
  readonly config: PoolConfig;
  readonly #supervisor: Supervisor;
  readonly #admission: Admission;
  readonly #catalogs: Catalogs;
  readonly #sessions: Sessions;
  readonly #servers: Servers;
  readonly #router: Router;
  /** What the server groups need from the pool. */
  readonly #groupHost: GroupHost;
  readonly #ready: Promise<void>;
  readonly #sweep: NodeJS.Timeout;
  #ids = 0;
  #closing: Promise<void> | undefined;

  /** Prefer `createPool`, which validates the config and waits for the servers. */
  constructor(config: PoolConfig) {
    super();
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
      resourceUpdated: (conn, uri) => {
        const payload: PoolEvent = { server: conn.server, uri };
        if (conn.sessionId !== undefined) payload.sessionId = conn.sessionId;
        this.emit("resource:updated", payload);
      },
    };
    this.#servers = new Servers(list, this.#groupHost, (server) => this.#catalogs.has(server));
    this.#router = new Router(config, this.#catalogs, this.#sessions, this.#servers);
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
    return this.#callTool(name, args, options, POOL_CALLER, false);
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
    return this.#resourceRequest(KINDS.readResource, uri, options, POOL_CALLER) as Promise<ReadResourceResult>;
  }

  /**
   * Subscribes to a resource's updates ("resource:updated" events `{ server, uri, sessionId? }`). The
   * subscription belongs to the connection that made it and survives its reopen and replacement.
   */
  async subscribeResource(uri: string, options: Omit<ResourceOptions, "timeoutMs" | "signal"> = {}): Promise<void> {
    await this.#subscription("add", uri, options, POOL_CALLER);
  }

  /** Ends a subscription made by `subscribeResource`; resolves at once if there is none. */
  async unsubscribeResource(uri: string, options: Omit<ResourceOptions, "timeoutMs" | "signal"> = {}): Promise<void> {
    await this.#subscription("remove", uri, options, POOL_CALLER);
  }

  /** Every prompt of every server, under its unique pool name (named as tools are). */
  async listPrompts(): Promise<PoolPrompt[]> {
    return this.#catalogs.prompts();
  }

  /** Gets a prompt by its pool name: the GetPromptResult as sent. Rejects with PROMPT_NOT_FOUND for an unknown name. */
  getPrompt(name: string, args: Record<string, string> = {}, options: RequestOptions = {}): Promise<GetPromptResult> {
    return this.#getPrompt(name, args, options, POOL_CALLER, false);
  }

  /**
   * Argument completion (`completion/complete`): a `ref/prompt` names the prompt by its pool name, a
   * `ref/resource` is routed as readResource routes its URI (or to `options.server`). Resolves with the
   * server's `completion` (`{ values, total?, hasMore? }`).
   */
  complete(params: CompleteParams, options: ResourceOptions = {}): Promise<CompleteResult["completion"]> {
    return this.#complete(params, options, POOL_CALLER);
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
    if (options.headers !== undefined) own.headers = { ...options.headers };
    const open = this.#sessions.get(id);
    if (open && !open.closing) checkHeaders(open, own);
    const caller: Caller = { sessionId: id, handleOptions: own };
    const listed = async <T>(read: (view: Catalogs) => T): Promise<T> => {
      await this.#listSessionCatalogs(this.#openSession(caller));
      return read(this.#router.view(id));
    };
    return {
      id,
      listTools: () => listed((v) => v.tools()),
      callTool: (name, args = {}, o = {}) => this.#callTool(name, args, o, caller, false),
      listResources: () => listed((v) => v.resources()),
      listResourceTemplates: () => listed((v) => v.resourceTemplates()),
      readResource: (uri, o = {}) => this.#resourceRequest(KINDS.readResource, uri, o, caller) as Promise<ReadResourceResult>,
      subscribeResource: async (uri, o = {}) => void (await this.#subscription("add", uri, o, caller)),
      unsubscribeResource: async (uri, o = {}) => void (await this.#subscription("remove", uri, o, caller)),
      listPrompts: () => listed((v) => v.prompts()),
      getPrompt: (name, args = {}, o = {}) => this.#getPrompt(name, args, o, caller, false),
      complete: (params, o = {}) => this.#complete(params, o, caller),
      close: () => this.#sessions.close(id),
    };
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
    this.#closing ??= this.#close();
    return this.#closing;
  }

  // ---- admission ---------------------------------------------------------------------------

  #callTool(name: string, args: Record<string, unknown>, options: CallToolOptions, caller: Caller, listed: boolean): Promise<CallToolResult> {
    if (this.#closing) return reject("POOL_CLOSED", "pool is closed", undefined, name);
    const checked = readCall(name, options);
    if (typeof checked === "string") return reject("INVALID_ARGUMENTS", checked, undefined, undefined);
    const sessionId = caller.sessionId ?? checked.sessionId;
    const entry = this.#router.tool(name, sessionId);
    if (!entry) {
      // The name may be one of the session's own tools that its connections have not listed yet (a server
      // whose tools depend on the caller): list them first, as session.listTools() would, then look again.
      if (sessionId !== undefined && !listed && this.#router.sessionUnlisted(sessionId)) {
        return this.#afterListing({ sessionId, handleOptions: caller.handleOptions }, checked.timeoutMs, () => this.#callTool(name, args, options, caller, true));
      }
      return Promise.reject(this.#router.notFound("tools", name));
    }
    const badArgs = argsProblem(args);
    if (badArgs !== undefined) return reject("INVALID_ARGUMENTS", badArgs, entry.server, entry.tool.name);
    const params = { name: entry.tool.name, arguments: args };
    return this.#admit(KINDS.callTool, this.config.servers[entry.server]!, entry.tool.name, params, checked, caller, entry.tool.annotations) as Promise<CallToolResult>;
  }

  #getPrompt(name: string, args: Record<string, string>, options: RequestOptions, caller: Caller, listed: boolean): Promise<GetPromptResult> {
    if (this.#closing) return reject("POOL_CLOSED", "pool is closed", undefined, name);
    const checked = readCall(name, options, "a prompt name");
    if (typeof checked === "string") return reject("INVALID_ARGUMENTS", checked, undefined, undefined);
    const sessionId = caller.sessionId ?? checked.sessionId;
    const entry = this.#router.prompt(name, sessionId);
    if (!entry) {
      if (sessionId !== undefined && !listed && this.#router.sessionUnlisted(sessionId)) {
        return this.#afterListing({ sessionId, handleOptions: caller.handleOptions }, checked.timeoutMs, () => this.#getPrompt(name, args, options, caller, true));
      }
      return Promise.reject(this.#router.notFound("prompts", name));
    }
    const badArgs = argsProblem(args);
    if (badArgs !== undefined) return reject("INVALID_ARGUMENTS", badArgs, entry.server, entry.prompt.name);
    const params = { name: entry.prompt.name, arguments: args };
    return this.#admit(KINDS.getPrompt, this.config.servers[entry.server]!, entry.prompt.name, params, checked, caller, undefined) as Promise<GetPromptResult>;
  }

  #resourceRequest(kind: RequestKind, uri: string, options: ResourceOptions, caller: Caller): Promise<unknown> {
    if (this.#closing) return reject("POOL_CLOSED", "pool is closed", options?.server, undefined);
    const checked = readCall(uri, options, "a resource URI");
    if (typeof checked === "string") return reject("INVALID_ARGUMENTS", checked, undefined, undefined);
    const server = this.#router.uri(uri, checked.server, caller.sessionId ?? checked.sessionId);
    if (server instanceof McpPoolError) return Promise.reject(server);
    return this.#admit(kind, server, undefined, { uri }, checked, caller, undefined);
  }

  #complete(params: CompleteParams, options: ResourceOptions, caller: Caller): Promise<CompleteResult["completion"]> {
    if (this.#closing) return reject("POOL_CLOSED", "pool is closed", undefined, undefined);
    const ref = (params as { ref?: { type?: unknown; name?: unknown; uri?: unknown } } | null)?.ref;
    if (ref?.type === "ref/resource") {
      if (typeof ref.uri !== "string") return reject("INVALID_ARGUMENTS", "a ref/resource needs a uri", undefined, undefined);
      return this.#resourceLike(KINDS.complete, ref.uri, params, options, caller) as Promise<CompleteResult["completion"]>;
    }
    if (ref?.type !== "ref/prompt" || typeof ref.name !== "string") return reject("INVALID_ARGUMENTS", "complete() needs a ref of type ref/prompt (with a name) or ref/resource (with a uri)", undefined, undefined);
    const checked = readCall(ref.name, options, "a prompt name");
    if (typeof checked === "string") return reject("INVALID_ARGUMENTS", checked, undefined, undefined);
    const entry = this.#router.prompt(ref.name, caller.sessionId ?? checked.sessionId);
    if (!entry) return Promise.reject(this.#router.notFound("prompts", ref.name));
    const sent = { ...params, ref: { ...params.ref, name: entry.prompt.name } };
    return this.#admit(KINDS.complete, this.config.servers[entry.server]!, entry.prompt.name, sent, checked, caller, undefined) as Promise<CompleteResult["completion"]>;
  }

  /** A completion for a resource template: routed as its URI would be. */
  #resourceLike(kind: RequestKind, uri: string, params: CompleteParams, options: ResourceOptions, caller: Caller): Promise<unknown> {
    const checked = readCall(uri, options, "a resource URI");
    if (typeof checked === "string") return reject("INVALID_ARGUMENTS", checked, undefined, undefined);
    const server = this.#router.uri(uri, checked.server, caller.sessionId ?? checked.sessionId);
    if (server instanceof McpPoolError) return Promise.reject(server);
    return this.#admit(kind, server, undefined, params as unknown as Record<string, unknown>, checked, caller, undefined);
  }

  /**
   * Subscribes or unsubscribes: a subscription is held by one connection of the group that serves the URI
   * (the worker subscribes again after that connection's reopen or replacement). Subscribing twice to the
   * same URI through the same group costs nothing; an unsubscribe goes to the connection that holds it.
   */
  async #subscription(verb: "add" | "remove", uri: string, options: ResourceOptions, caller: Caller): Promise<void> {
    if (this.#closing) throw new McpPoolError("POOL_CLOSED", "pool is closed");
    const checked = readCall(uri, options, "a resource URI");
    if (typeof checked === "string") throw new McpPoolError("INVALID_ARGUMENTS", checked);
    const sessionId = caller.sessionId ?? checked.sessionId;
    const server = this.#router.uri(uri, checked.server, sessionId);
    if (server instanceof McpPoolError) throw server;
    const session = sessionId === undefined ? undefined : this.#openSession({ sessionId, handleOptions: caller.handleOptions });
    const group = this.#router.group(server, session, this.#groupHost);
    if (group instanceof McpPoolError) throw group;
    const holder = group.connections.find((c) => c.subscriptions.has(uri));
    // A session's subscriptions on a shared server end with it (see #sessionClosed).
    const shared = session && server.scope === "shared" ? session.sharedSubscriptions : undefined;
    if (verb === "add") {
      if (!holder) await this.#admit(KINDS.subscribe, server, undefined, { uri }, checked, caller, undefined);
      if (shared) (shared.get(server.name) ?? shared.set(server.name, new Set()).get(server.name)!).add(uri);
      return;
    }
    shared?.get(server.name)?.delete(uri);
    if (holder) await this.#admit(KINDS.unsubscribe, server, undefined, { uri }, checked, caller, undefined, holder);
  }

  /**
   * Lets one request in: counted from here, with its deadline's timer armed, until it settles. Everything
   * the caller passed was checked before.
   */
  #admit(kind: RequestKind, server: ServerConfig, tool: string | undefined, params: Record<string, unknown>, checked: CheckedCallOptions, caller: Caller, annotations: ToolAnnotations | undefined, via?: Connection): Promise<unknown> {
    if (checked.signal?.aborted) return reject("ABORTED", "aborted before the request started", server.name, tool);
    const sessionId = caller.sessionId ?? checked.sessionId;
    let session: Session | undefined;
    if (sessionId !== undefined) {
      try {
        session = this.#openSession({ sessionId, handleOptions: caller.handleOptions });
      } catch (error) {
        return Promise.reject(error);
      }
    }
    const group = this.#router.group(server, session, this.#groupHost);
    if (group instanceof McpPoolError) return Promise.reject(new McpPoolError(group.code, group.message, { server: server.name, tool }));
    const ledger = this.#admission;
    const timeoutMs = checked.timeoutMs ?? server.toolCallTimeoutMs;
    // One promise per request, the caller's: the Call settles it (no promise chain).
    return new Promise((resolve, reject) => {
      const call = new Call({ kind, server, group, session, tool, params, timeoutMs, signal: checked.signal, onProgress: checked.onProgress, annotations, ledger, resolve, reject, via });
      ledger.admitted(call);
      call.route();
    });
  }

  #openSession(caller: Caller): Session {
    if (this.#closing) throw new McpPoolError("POOL_CLOSED", "pool is closed");
    return this.#sessions.open(caller.sessionId!, caller.handleOptions);
  }

  /** A request whose name the session's view may hold once its own connections have listed (see #callTool). */
  async #afterListing<T>(caller: Caller, timeoutMs: number | undefined, then: () => Promise<T>): Promise<T> {
    await this.#listSessionCatalogs(this.#openSession(caller), timeoutMs);
    return then();
  }

  /**
   * Opens the session's connections to its session-scoped servers that have not listed to it yet, and
   * waits (as a call would) until each has listed or failed: what a server lists may depend on who asks.
   */
  async #listSessionCatalogs(session: Session, timeoutMs?: number): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const server of this.#servers.list) {
      if (server.scope !== "session" || session.catalogs?.has(server.name)) continue;
      // Failed: the view keeps the pool's lists for that server.
      waits.push(session.group(server, this.#groupHost).whenSettled(timeoutMs ?? server.connectTimeoutMs + this.config.limits.acquireTimeoutMs));
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

  // ---- what connections report -------------------------------------------------------------

  #connectionEvent(kind: "ready" | "lost" | "failed", conn: Connection, error?: unknown): void {
    const servers = this.#servers;
    if (kind === "lost") this.#admission.counts.serverCrashes++;
    if (kind === "ready" && conn.serverInfo) servers.infos.set(conn.server, conn.serverInfo);
    if (kind === "ready" && conn.verdict) servers.verdicts.set(conn.server, conn.verdict);
    if (kind === "ready") servers.connectErrors.delete(conn.server);
    else if (kind === "failed" && conn.lastError) servers.connectErrors.set(conn.server, conn.lastError);
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
        if (holder && group) void this.#admit(KINDS.unsubscribe, group.config, undefined, { uri }, NO_OPTIONS, POOL_CALLER, undefined, holder).catch(() => {});
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
  }
}

const NO_OPTIONS: CheckedCallOptions = { sessionId: undefined, server: undefined, timeoutMs: undefined, signal: undefined, onProgress: undefined };

function eventOf(conn: Connection, error?: unknown): PoolEvent {
  const event: PoolEvent = { server: conn.server, connectionId: conn.id };
  if (conn.sessionId !== undefined) event.sessionId = conn.sessionId;
  if (conn.pid !== undefined) event.pid = conn.pid;
  if (error !== undefined) event.error = error;
  return event;
}

function reject(code: McpPoolError["code"], message: string, server: string | undefined, tool: string | undefined): Promise<never> {
  return Promise.reject(new McpPoolError(code, message, { server, tool }));
}

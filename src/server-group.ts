/**
 * A server group: the connections that serve one server for one audience — the shared replicas
 * of a `shared` server, or one session's own connection to a `session` server — and the FIFO of
 * calls waiting for one of them.
 */
import type { Admission } from "./admission.js";
import type { ServerConfig } from "./config.js";
import { Connection, type ConnectionOwner } from "./connection.js";
import { McpPoolError } from "./errors.js";
import type { Catalogs, ClientCapabilityKind, ConnectionSpec, ConnectionState, Outcome, Verdict } from "./common/protocol.js";
import type { Call } from "./call.js";
import { connectHeaders, declaredKinds, moreCapabilities, routeServerRequest, type Audience, type HeadersFunction, type HeadersOutcome, type RequestHandlers } from "./server-requests.js";
import type { Supervisor } from "./supervisor.js";
import type { LoggingLevel } from "@modelcontextprotocol/client";

/**
 * Load balancing, pure: the ready connection with the fewest calls in flight, below the cap.
 * Ties go to the earlier connection, so a lightly loaded pool keeps using the same one.
 */
export function pickConnection(connections: readonly Connection[], maxInFlight: number): Connection | undefined {
  let best: Connection | undefined;
  for (const c of connections) {
    if (c.state !== "ready" || c.inFlight >= maxInFlight) continue;
    if (!best || c.inFlight < best.inFlight) best = c;
  }
  return best;
}

/** What a group needs from the pool that owns it. */
export interface GroupHost {
  readonly supervisor: Supervisor;
  readonly admission: Admission;
  readonly maxMessageBytes: number;
  readonly workerNice: number;
  nextConnectionId(server: string): string;
  /** The era `server`'s connections last found (see Verdict). */
  priorFor(server: string): Verdict | undefined;
  connectionEvent(kind: "ready" | "lost" | "failed", conn: Connection, error?: unknown): void;
  workerCrash(conn: Connection, error: unknown): void;
  catalogsChanged(conn: Connection, kinds: readonly (keyof Catalogs)[]): void;
  serverLog(conn: Connection, level: string, logger: string | undefined, data: unknown): void;
  resourceUpdated(conn: Connection, uri: string): void;
  /** The pool's handlers for requests from servers (`createPool`'s second argument), if any. */
  readonly handlers: RequestHandlers | undefined;
  /** The log level set for `server` (pool.setLoggingLevel), if any. */
  logLevelFor(server: string): LoggingLevel | undefined;
  /** The pool's `headers` function (`createPool`'s second argument), if any. */
  readonly headers: HeadersFunction | undefined;
}

export class ServerGroup implements ConnectionOwner {
  readonly config: ServerConfig;
  readonly sessionId: string | undefined;
  readonly connections: Connection[] = [];
  readonly #host: GroupHost;
  readonly #headers: Record<string, string>;
  /** A session's group whose headers are a function. */
  readonly #sessionHeadersFn: HeadersFunction | undefined;
  /** A session's group: that session's handlers. */
  readonly #sessionHandlers: RequestHandlers | undefined;
  /** What its connections declare (see ConnectionSpec.clientCapabilities). */
  readonly #clientCapabilities: ClientCapabilityKind[];
  /** Calls waiting for a connection, FIFO. */
  readonly #queue: Call[] = [];
  #queueTimer: NodeJS.Timeout | undefined;
  /** Those waiting in whenSettled(). */
  readonly #settledWaiters = new Set<() => void>();
  /** Waiting for a worker slot to open a connection. */
  #wantsSlot = false;
  /** Wakes the one who waits in `opened()`. */
  #onOpened: (() => void) | undefined;
  #closed = false;

  constructor(config: ServerConfig, host: GroupHost, sessionId?: string, sessionHeaders?: Record<string, string> | HeadersFunction, sessionHandlers?: RequestHandlers) {
    this.config = config;
    this.sessionId = sessionId;
    this.#host = host;
    this.#sessionHeadersFn = typeof sessionHeaders === "function" ? sessionHeaders : undefined;
    this.#headers = { ...config.headers, ...(typeof sessionHeaders === "function" ? {} : sessionHeaders) };
    this.#sessionHandlers = sessionHandlers;
    // A session's connections declare what the session or the pool can answer. A shared connection serves
    // every session, and declares what the pool can answer: a session's own handlers answer the requests its
    // calls cause there, for those kinds, and in the 2026-07-28 era for the kinds its calls declare per request
    // (moreCapabilities; README, "Requests from servers").
    this.#clientCapabilities = declaredKinds(sessionHandlers, host.handlers);
  }

  get waiting(): number {
    return this.#queue.length;
  }

  /** Resolves once the group has a connection (at once if it has one). One waiter at a time (the pool's discovery). */
  opened(): Promise<void> {
    if (this.connections.length > 0) return Promise.resolve();
    return new Promise((resolve) => (this.#onOpened = resolve));
  }

  /**
   * Opens connections up to `connections.min`. While the server's era is not known yet, one goes first and
   * the others wait until it is ready (they then connect without probing) or has failed its first attempt
   * (they then all go, each probing): onState fills again.
   */
  fill(): void {
    if (!this.#eraKnown()) {
      if (this.connections.some((c) => c.state === "connecting" && c.failedAttempts === 0)) return;
      if (this.connections.length === 0) {
        if (!this.#closed && this.config.connections.min > 0) this.#open();
        return;
      }
    }
    while (!this.#closed && this.connections.length < this.config.connections.min && !this.#wantsSlot) this.#open();
  }

  /** Resolves once the connections `fill()` opened, the ones that waited for the first included, have each connected or failed. */
  async filled(): Promise<void> {
    for (let seen = -1; this.connections.length !== seen; ) {
      seen = this.connections.length;
      await Promise.all(this.connections.map((c) => c.settled));
      // The others are opened as the first one settles (onState, ahead of its `settled`).
    }
  }

  /** A new connection of this server needs no probe: it is `legacy`, or one of its connections found its era. */
  #eraKnown(): boolean {
    return this.config.protocol === "legacy" || this.#host.priorFor(this.config.name) !== undefined || this.connections.some((c) => c.verdict !== undefined);
  }

  /** Called by the pool when a worker slot was given to this group. */
  slotGranted(): void {
    this.#wantsSlot = false;
    if (this.#closed) {
      this.#host.admission.releaseSlot();
      return;
    }
    this.#add();
  }

  #open(): void {
    if (this.#wantsSlot) return;
    if (this.#host.admission.takeSlot(this)) this.#add();
    else this.#wantsSlot = true;
  }

  #add(): Connection {
    const c = this.config;
    const spec: ConnectionSpec = {
      connectionId: this.#host.nextConnectionId(c.name),
      server: c.name,
      transport: c.transport,
      command: c.command,
      args: c.args,
      env: c.env,
      cwd: c.cwd,
      stderr: c.stderr,
      url: c.url,
      headers: this.#headers,
      connectTimeoutMs: c.connectTimeoutMs,
      reconnect: c.reconnect,
      keepalive: c.keepalive,
      protocol: c.protocol,
      maxMessageBytes: this.#host.maxMessageBytes,
      nice: this.#host.workerNice,
      subscriptions: [],
      clientCapabilities: this.#clientCapabilities,
      dynamicHeaders: c.transport !== "stdio" && (this.#host.headers !== undefined || this.#sessionHeadersFn !== undefined),
    };
    const conn = new Connection(spec, this.sessionId, this.#host.supervisor, this);
    this.connections.push(conn);
    const opened = this.#onOpened;
    this.#onOpened = undefined;
    opened?.();
    return conn;
  }

  /**
   * Sends a call on a connection: at once when a ready connection has room, else the call waits (FIFO,
   * bounded) while a replica opens, the connection recovers or capacity frees up. Refused at once when the
   * server cannot serve (SERVER_UNAVAILABLE) or the queue is full (POOL_EXHAUSTED).
   */
  acquire(call: Call): void {
    if (this.#closed) return call.settle(call.error("POOL_CLOSED", "pool is closed"));
    // Where its subscription is; a connection that is not ready will subscribe again when it is (the host
    // keeps its set), and its updates for a URI no longer held here are dropped.
    if (call.via) {
      if (call.via.state === "ready") return call.via.send(call);
      call.via.subscriptions.delete(call.params.uri as string);
      return call.settle(undefined, {});
    }
    if (this.#queue.length === 0) {
      const conn = pickConnection(this.connections, this.#host.admission.maxInFlightPerConnection);
      if (conn) return conn.send(call);
    }
    if (this.#canGrow()) this.#open();
    if (!this.#canServeSoon()) return call.settle(this.#unavailable(call));
    const admission = this.#host.admission;
    if (admission.queued >= admission.maxQueue) {
      return call.settle(call.error("POOL_EXHAUSTED", `queue full: ${admission.maxQueue} calls already waiting`));
    }
    call.queuedAt = Date.now();
    this.#queue.push(call);
    admission.queued++;
    if (call.telemetry) call.telemetry.event(call, this.#reconnecting() ? "reconnect-wait" : "queued");
    // One timer per group for `acquireTimeoutMs`, for the oldest call waiting (the deadline is the call's own).
    if (this.#queueTimer === undefined) this.#armQueueTimer();
  }

  /** Takes a call out of the queue (it settled while waiting: deadline, abort). */
  dequeue(call: Call): void {
    const i = this.#queue.indexOf(call);
    if (i === -1) return;
    this.#queue.splice(i, 1);
    call.queuedAt = 0;
    this.#host.admission.queued--;
    if (this.#queue.length === 0) {
      clearTimeout(this.#queueTimer);
      this.#queueTimer = undefined;
      // Nobody waits any more: a worker slot queued for them would open a connection no one needs.
      if (this.#wantsSlot && this.connections.length >= this.config.connections.min) {
        this.#wantsSlot = false;
        this.#host.admission.withdrawSlot(this);
      }
    }
  }

  /**
   * Why a waiting call ran out of time: its deadline (`byDeadline`) or `acquireTimeoutMs`. Busy connections
   * (or one waiting for a worker slot) make it POOL_EXHAUSTED; a server that did not come up, TIMEOUT at
   * the deadline and SERVER_UNAVAILABLE at the acquire timeout.
   */
  expired(call: Call, byDeadline: boolean): McpPoolError {
    const saturated = this.#wantsSlot || this.connections.some((c) => c.state === "ready");
    if (saturated) return call.error("POOL_EXHAUSTED", `no connection to "${this.config.name}" could take the call in time`);
    if (byDeadline) return call.error("TIMEOUT", `server "${this.config.name}" did not become ready before the call's deadline`);
    return call.error("SERVER_UNAVAILABLE", `server "${this.config.name}" did not become ready within ${this.#host.admission.acquireTimeoutMs} ms`);
  }

  #armQueueTimer(): void {
    const head = this.#queue[0];
    if (!head) return;
    const due = head.queuedAt + this.#host.admission.acquireTimeoutMs - Date.now();
    this.#queueTimer = setTimeout(this.#onQueueTimer, Math.max(0, due));
  }

  readonly #onQueueTimer = (): void => {
    this.#queueTimer = undefined;
    const limit = Date.now() - this.#host.admission.acquireTimeoutMs;
    // FIFO: the calls that waited too long are at the front.
    while (this.#queue.length > 0 && this.#queue[0]!.queuedAt <= limit) {
      const call = this.#queue[0]!;
      call.settle(this.expired(call, false));
    }
    if (this.#queue.length > 0 && this.#queueTimer === undefined) this.#armQueueTimer();
  };

  #canGrow(): boolean {
    if (this.#wantsSlot) return false;
    // A closing connection (an evicted session connection, a surplus replica) no longer counts:
    // the next call opens a new one instead of being refused.
    let open = 0;
    for (const c of this.connections) if (!c.closing) open++;
    if (open >= this.config.connections.max) return false;
    // One new replica at a time: if one is already on its way, wait for it.
    for (const c of this.connections) if (c.state === "connecting" && c.failedAttempts === 0) return false;
    return true;
  }

  /** No connection is ready and one is on its way back after a loss: a call waits for its server to return. */
  #reconnecting(): boolean {
    let back = false;
    for (const c of this.connections) {
      if (c.state === "ready") return false;
      if (c.state === "reconnecting") back = true;
    }
    return back;
  }

  /** True when a call that waits may be served: a connection is ready, recovering, or about to open. */
  #canServeSoon(): boolean {
    if (this.#wantsSlot) return true;
    for (const c of this.connections) if (c.state === "ready" || c.recovering) return true;
    return false;
  }

  #unavailable(call: Call): McpPoolError {
    const conn = this.connections.find((c) => c.lastError);
    const last = conn?.lastError;
    const why = last ? `: ${last.message}` : "";
    const cause = conn?.failureCause();
    return new McpPoolError("SERVER_UNAVAILABLE", `server "${this.config.name}" is unavailable${why}`, {
      server: this.config.name,
      tool: call.tool,
      ...(cause !== undefined ? { cause } : {}),
    });
  }

  /** Hands waiting calls to connections with room, in FIFO order. */
  drain(): void {
    while (this.#queue.length > 0) {
      const conn = pickConnection(this.connections, this.#host.admission.maxInFlightPerConnection);
      if (!conn) break;
      const call = this.#queue[0]!;
      this.dequeue(call);
      conn.send(call);
    }
    if (this.#queue.length > 0) {
      if (this.#canGrow()) this.#open();
      if (!this.#canServeSoon()) for (const call of this.#queue.slice()) call.settle(this.#unavailable(call));
    }
  }

  /**
   * Resolves once one of the group's connections is ready or has failed (opened here if need be), or
   * `timeoutMs` passed: what a session waits for before it reads what its own connections listed.
   */
  whenSettled(timeoutMs: number): Promise<void> {
    // Settled: ready, or it has failed an attempt (a recovering connection may take its whole backoff).
    if (this.#closed || this.connections.some((c) => c.state === "ready" || c.state === "failed" || c.failedAttempts > 0)) return Promise.resolve();
    if (this.connections.length === 0 && !this.#wantsSlot) this.#open();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const waiters = this.#settledWaiters;
      function done(): void {
        clearTimeout(timer);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  #wakeSettled(): void {
    for (const done of [...this.#settledWaiters]) done();
  }

  /** Closes every connection; waiting calls fail with `code`. Idempotent. */
  async close(code: "CONNECTION_LOST" | "POOL_CLOSED" = "POOL_CLOSED"): Promise<void> {
    this.#closed = true;
    if (this.#wantsSlot) {
      this.#wantsSlot = false;
      this.#host.admission.withdrawSlot(this);
    }
    const message = code === "POOL_CLOSED" ? "pool is closed" : "session closed";
    for (const call of this.#queue.slice()) call.settle(call.error(code, message));
    this.#wakeSettled();
    await Promise.all(this.connections.map((c) => c.close(code)));
  }

  // ConnectionOwner: what the connections report.
  onState(conn: Connection, previous: ConnectionState): void {
    if (conn.state === "ready") {
      this.#host.connectionEvent("ready", conn);
      this.#wakeSettled();
      this.drain();
    } else if (conn.state === "failed" || (conn.failedAttempts > 0 && previous !== "failed")) {
      if (conn.state === "failed" || conn.failedAttempts === 1) this.#host.connectionEvent("failed", conn, conn.lastError);
      this.#wakeSettled();
      this.drain();
    }
    // The replicas that waited for the first one's verdict (see fill), now that the pool has it.
    if (conn.state === "ready" || conn.state === "failed" || conn.failedAttempts > 0) this.fill();
  }

  onCatalogs(conn: Connection, kinds: readonly (keyof Catalogs)[]): void {
    this.#host.catalogsChanged(conn, kinds);
  }

  onLog(conn: Connection, level: string, logger: string | undefined, data: unknown): void {
    this.#host.serverLog(conn, level, logger, data);
  }

  onResourceUpdated(conn: Connection, uri: string): void {
    this.#host.resourceUpdated(conn, uri);
  }

  onIdle(conn: Connection): void {
    this.#host.admission.connectionIdle(conn);
    if (this.#queue.length > 0) this.drain();
  }

  onLost(conn: Connection, cause: "server" | "worker", error: unknown): void {
    if (cause === "worker") this.#host.workerCrash(conn, error);
    this.#host.connectionEvent("lost", conn, error);
  }

  // Requests from servers and fresh headers: the rules live in server-requests.ts; the group says who it serves.
  serverRequest(_conn: Connection, call: Call | undefined, method: string, params: unknown, signal: AbortSignal): Promise<Outcome<unknown>> {
    return routeServerRequest(this.#audience(), call, method, params, signal);
  }

  logLevel(): LoggingLevel | undefined {
    return this.#host.logLevelFor(this.config.name);
  }

  moreCapabilities(call: Call): ClientCapabilityKind[] | undefined {
    return moreCapabilities(this.#audience(), call);
  }

  headers(_conn: Connection): Promise<HeadersOutcome> {
    return connectHeaders(this.#audience(), this.#headers, this.#host.headers, this.#sessionHeadersFn);
  }

  #audience(): Audience {
    return { server: this.config.name, sessionId: this.sessionId, sessionHandlers: this.#sessionHandlers, poolHandlers: this.#host.handlers, declared: this.#clientCapabilities };
  }

  prior(): Verdict | undefined {
    return this.#host.priorFor(this.config.name) ?? this.connections.find((c) => c.verdict)?.verdict;
  }

  onClosed(conn: Connection): void {
    const i = this.connections.indexOf(conn);
    if (i !== -1) this.connections.splice(i, 1);
    this.#host.admission.releaseSlot();
    if (!this.#closed) {
      this.fill();
      this.drain();
    }
  }
}

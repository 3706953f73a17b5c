/**
 * A server group: the connections that serve one server for one audience — the shared replicas
 * of a `shared` server, or one session's own connection to a `session` server — and the FIFO of
 * calls waiting for one of them.
 */
import type { ServerConfig } from "./config.js";
import { Connection, type ConnectionOwner } from "./connection.js";
import { McpPoolError, type ErrorCode } from "./errors.js";
import type { ConnectionSpec, ConnectionState, HostEvent, Verdict } from "./common/protocol.js";
import type { Supervisor } from "./supervisor.js";

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

/** A call waiting for a connection. `run` starts it on the connection it was given. */
export interface Waiter {
  run(conn: Connection): void;
  fail(error: McpPoolError): void;
  server: string;
  tool: string;
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** What a group needs from the pool that owns it. */
export interface GroupHost {
  readonly supervisor: Supervisor;
  readonly maxInFlightPerConnection: number;
  readonly acquireTimeoutMs: number;
  readonly maxQueue: number;
  readonly maxMessageBytes: number;
  readonly workerNice: number;
  /** Calls waiting in all groups together (bounded by maxQueue). */
  queued: number;
  /** Takes a worker slot now, or queues the group for the next free one (returns false). */
  takeSlot(group: ServerGroup): boolean;
  /** The group no longer needs the slot it queued for. */
  withdrawSlot(group: ServerGroup): void;
  releaseSlot(): void;
  nextConnectionId(server: string): string;
  /** The era `server`'s connections last found (see Verdict). */
  priorFor(server: string): Verdict | undefined;
  connectionEvent(kind: "ready" | "lost" | "failed", conn: Connection, error?: unknown): void;
  workerCrash(conn: Connection, error: unknown): void;
  toolsChanged(conn: Connection): void;
  serverLog(conn: Connection, event: Extract<HostEvent, { ev: "log" }>): void;
  callFinished(conn: Connection): void;
}

export class ServerGroup implements ConnectionOwner {
  readonly config: ServerConfig;
  readonly sessionId: string | undefined;
  readonly connections: Connection[] = [];
  readonly #host: GroupHost;
  readonly #headers: Record<string, string>;
  readonly #waiters: Waiter[] = [];
  /** Waiting for a worker slot to open a connection. */
  #wantsSlot = false;
  /** Wakes the one who waits in `opened()`. */
  #onOpened: (() => void) | undefined;
  #closed = false;

  constructor(config: ServerConfig, host: GroupHost, sessionId?: string, sessionHeaders?: Record<string, string>) {
    this.config = config;
    this.sessionId = sessionId;
    this.#host = host;
    this.#headers = { ...config.headers, ...sessionHeaders };
  }

  get waiting(): number {
    return this.#waiters.length;
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
      this.#host.releaseSlot();
      return;
    }
    this.#add();
  }

  #open(): void {
    if (this.#wantsSlot) return;
    if (this.#host.takeSlot(this)) this.#add();
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
    };
    const conn = new Connection(spec, this.sessionId, this.#host.supervisor, this);
    this.connections.push(conn);
    const opened = this.#onOpened;
    this.#onOpened = undefined;
    opened?.();
    return conn;
  }

  /**
   * A connection for a call: one at once when a ready connection has room, else the call waits
   * (FIFO, bounded) while a replica opens, the connection recovers or capacity frees up.
   * Refused at once when the server cannot serve (SERVER_UNAVAILABLE) or the queue is full (POOL_EXHAUSTED).
   */
  acquire(waiter: Waiter): void {
    if (this.#closed) return waiter.fail(this.#error(waiter, "POOL_CLOSED", "pool is closed"));
    if (this.#waiters.length === 0) {
      const conn = pickConnection(this.connections, this.#host.maxInFlightPerConnection);
      if (conn) return waiter.run(conn);
    }
    if (this.#canGrow()) this.#open();
    if (!this.#canServeSoon()) {
      return waiter.fail(this.#unavailable(waiter));
    }
    if (this.#host.queued >= this.#host.maxQueue) {
      return waiter.fail(this.#error(waiter, "POOL_EXHAUSTED", `queue full: ${this.#host.maxQueue} calls already waiting`));
    }
    this.#enqueue(waiter);
  }

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

  /** True when a call that waits may be served: a connection is ready, recovering, or about to open. */
  #canServeSoon(): boolean {
    if (this.#wantsSlot) return true;
    for (const c of this.connections) if (c.state === "ready" || c.recovering) return true;
    return false;
  }

  #unavailable(waiter: Waiter): McpPoolError {
    const last = this.connections.find((c) => c.lastError)?.lastError;
    const why = last ? `: ${last.message}` : "";
    return new McpPoolError("SERVER_UNAVAILABLE", `server "${this.config.name}" is unavailable${why}`, {
      server: this.config.name,
      tool: waiter.tool,
      ...(last ? { cause: new Error(last.message) } : {}),
    });
  }

  #error(waiter: Waiter, code: ErrorCode, message: string): McpPoolError {
    return new McpPoolError(code, message, { server: this.config.name, tool: waiter.tool });
  }

  #enqueue(waiter: Waiter): void {
    const untilDeadline = waiter.deadline - Date.now();
    // Known now, not when the timer fires: Node may fire a timer early by the length of a long tick,
    // so "is the deadline past?" could then wrongly say no.
    const byDeadline = untilDeadline <= this.#host.acquireTimeoutMs;
    waiter.timer = setTimeout(() => this.#expire(waiter, byDeadline), Math.max(0, byDeadline ? untilDeadline : this.#host.acquireTimeoutMs));
    if (waiter.signal) {
      waiter.onAbort = () => {
        if (this.#remove(waiter)) waiter.fail(this.#error(waiter, "ABORTED", "aborted while waiting for a connection"));
      };
      waiter.signal.addEventListener("abort", waiter.onAbort, { once: true });
    }
    this.#waiters.push(waiter);
    this.#host.queued++;
  }

  #remove(waiter: Waiter): boolean {
    const i = this.#waiters.indexOf(waiter);
    if (i === -1) return false;
    this.#waiters.splice(i, 1);
    this.#host.queued--;
    clearTimeout(waiter.timer);
    if (waiter.onAbort) waiter.signal!.removeEventListener("abort", waiter.onAbort);
    // Nobody waits any more: a worker slot queued for them would open a connection no one needs.
    if (this.#waiters.length === 0 && this.#wantsSlot && this.connections.length >= this.config.connections.min) {
      this.#wantsSlot = false;
      this.#host.withdrawSlot(this);
    }
    return true;
  }

  #expire(waiter: Waiter, byDeadline: boolean): void {
    // Read before #remove, which may withdraw the slot request this call was waiting on.
    const saturated = this.#wantsSlot || this.connections.some((c) => c.state === "ready");
    if (!this.#remove(waiter)) return;
    if (saturated) {
      waiter.fail(this.#error(waiter, "POOL_EXHAUSTED", `no connection to "${this.config.name}" could take the call in time`));
    } else if (byDeadline || Date.now() >= waiter.deadline) {
      waiter.fail(this.#error(waiter, "TIMEOUT", `server "${this.config.name}" did not become ready before the call's deadline`));
    } else {
      waiter.fail(this.#error(waiter, "SERVER_UNAVAILABLE", `server "${this.config.name}" did not become ready within ${this.#host.acquireTimeoutMs} ms`));
    }
  }

  /** Hands waiting calls to connections with room, in FIFO order. */
  drain(): void {
    while (this.#waiters.length > 0) {
      const conn = pickConnection(this.connections, this.#host.maxInFlightPerConnection);
      if (!conn) break;
      const waiter = this.#waiters[0]!;
      this.#remove(waiter);
      waiter.run(conn);
    }
    if (this.#waiters.length > 0) {
      if (this.#canGrow()) this.#open();
      if (!this.#canServeSoon()) this.#failWaiters();
    }
  }

  #failWaiters(code: ErrorCode = "SERVER_UNAVAILABLE", message?: string): void {
    for (const waiter of this.#waiters.slice()) {
      this.#remove(waiter);
      waiter.fail(message ? this.#error(waiter, code, message) : this.#unavailable(waiter));
    }
  }

  /** Closes every connection; waiting calls fail with `code`. Idempotent. */
  async close(code: "CONNECTION_LOST" | "POOL_CLOSED" = "POOL_CLOSED"): Promise<void> {
    this.#closed = true;
    if (this.#wantsSlot) {
      this.#wantsSlot = false;
      this.#host.withdrawSlot(this);
    }
    this.#failWaiters(code, code === "POOL_CLOSED" ? "pool is closed" : "session closed");
    await Promise.all(this.connections.map((c) => c.close(code)));
  }

  // ConnectionOwner: what the connections report.
  onState(conn: Connection, previous: ConnectionState): void {
    if (conn.state === "ready") {
      this.#host.connectionEvent("ready", conn);
      this.drain();
    } else if (conn.state === "failed" || (conn.failedAttempts > 0 && previous !== "failed")) {
      if (conn.state === "failed" || conn.failedAttempts === 1) this.#host.connectionEvent("failed", conn, conn.lastError);
      this.drain();
    }
    // The replicas that waited for the first one's verdict (see fill), now that the pool has it.
    if (conn.state === "ready" || conn.state === "failed" || conn.failedAttempts > 0) this.fill();
  }

  onTools(conn: Connection): void {
    this.#host.toolsChanged(conn);
  }

  onLog(conn: Connection, event: Extract<HostEvent, { ev: "log" }>): void {
    this.#host.serverLog(conn, event);
  }

  onIdle(conn: Connection): void {
    this.#host.callFinished(conn);
    if (this.#waiters.length > 0) this.drain();
  }

  onLost(conn: Connection, cause: "server" | "worker", error: unknown): void {
    if (cause === "worker") this.#host.workerCrash(conn, error);
    this.#host.connectionEvent("lost", conn, error);
  }

  prior(): Verdict | undefined {
    return this.#host.priorFor(this.config.name) ?? this.connections.find((c) => c.verdict)?.verdict;
  }

  onClosed(conn: Connection): void {
    const i = this.connections.indexOf(conn);
    if (i !== -1) this.connections.splice(i, 1);
    this.#host.releaseSlot();
    if (!this.#closed) {
      this.fill();
      this.drain();
    }
  }
}

/**
 * The main thread's handle on one connection: a host task in its own worker, the comlink proxy
 * to it, and the calls in flight on it. It never touches the transport; it asks the host.
 *
 * When the worker dies, this handle reaps the server's process group, settles its calls with
 * CONNECTION_LOST and starts a replacement host in a fresh worker under the same id.
 */
import { receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import { wrap, type Remote } from "comlink";
import type { CallToolResult, Progress, Tool } from "@modelcontextprotocol/client";
import { backoffDelay } from "./common/backoff.js";
import { callSafely } from "./callbacks.js";
import { McpPoolError } from "./errors.js";
import { isHostEvent, NOT_SENT, PING, wasNotSent, type ConnectionSpec, type ConnectionState, type HostApi, type HostEvent, type ServerInfo, type Verdict, type WireError, type CallBatch, type CallRequest, type Outcome } from "./common/protocol.js";
import type { HostHandle, Supervisor } from "./supervisor.js";

/** How long a host gets to close its transport before its worker is terminated. */
const CLOSE_GRACE_MS = 5_000;

export interface ConnectionOwner {
  onState(conn: Connection, previous: ConnectionState): void;
  onTools(conn: Connection): void;
  /** The host reports something of the server for the pool's "log" event. */
  onLog(conn: Connection, event: Extract<HostEvent, { ev: "log" }>): void;
  /** A call finished: capacity freed on this connection. */
  onIdle(conn: Connection): void;
  /** A ready connection was lost: its server died or hung (`server`), or its worker died (`worker`). */
  onLost(conn: Connection, cause: "server" | "worker", error: unknown): void;
  /** The connection is closed for good and its worker is free. */
  onClosed(conn: Connection): void;
  /** The server's era as its connections last found it, for a host about to start (see Verdict). */
  prior(): Verdict | undefined;
}

export interface CallOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  onProgress?: ((progress: Progress) => void) | undefined;
}

/** How a call ends: called exactly once, with an error or with the result. */
type CallDone = (error: McpPoolError | undefined, result: CallToolResult | undefined) => void;

interface PendingCall {
  done: CallDone;
  tool: string;
  timer: NodeJS.Timeout;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  onProgress: ((progress: Progress) => void) | undefined;
}

let nextCallId = 0;

export class Connection {
  readonly id: string;
  readonly server: string;
  readonly sessionId: string | undefined;
  state: ConnectionState = "connecting";
  /** Connect attempts that failed since it was last ready; 0 means it is on its way (calls may wait). */
  failedAttempts = 0;
  lastError: WireError | undefined;
  pid: number | undefined;
  threadId: number | undefined;
  inFlight = 0;
  calls = 0;
  restarts = 0;
  /** The server's tools as this connection last listed them. */
  tools: Tool[] | undefined;
  /** What the server said of itself when this connection last became ready. */
  serverInfo: ServerInfo | undefined;
  /** The server's era as this connection last found it. */
  verdict: Verdict | undefined;
  /** Last time a call finished or started here (for idle eviction). */
  lastUsed = Date.now();

  readonly #spec: ConnectionSpec;
  readonly #supervisor: Supervisor;
  readonly #owner: ConnectionOwner;
  #host: HostHandle | undefined;
  #remote: Remote<HostApi> | undefined;
  #pending = new Map<number, PendingCall>();
  /** Ports of this connection's hosts that emitted 'close' (see #retire). */
  readonly #closedPorts = new WeakSet<MessagePort>();
  /** Calls made this tick, posted together at its end (see CallBatch). */
  #outbox: CallRequest[] = [];
  #closing: Promise<void> | undefined;
  #crashes = 0;
  /** The host's own last word: ready or not (our `state` may run ahead of it). */
  #hostReady = false;
  #closeCode: "CONNECTION_LOST" | "POOL_CLOSED" = "CONNECTION_LOST";
  /** When the ping outstanding on the current host was sent (see #beat); 0: none is. */
  #pingSentAt = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #firstResult: Promise<void>;
  #markFirstResult!: () => void;

  constructor(spec: ConnectionSpec, sessionId: string | undefined, supervisor: Supervisor, owner: ConnectionOwner) {
    this.id = spec.connectionId;
    this.server = spec.server;
    this.sessionId = sessionId;
    this.#spec = spec;
    this.#supervisor = supervisor;
    this.#owner = owner;
    this.#firstResult = new Promise((resolve) => (this.#markFirstResult = resolve));
    this.#startHost();
  }

  /** Resolves once the connection was ready, or its first attempt failed. */
  get settled(): Promise<void> {
    return this.#firstResult;
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * On its way (back) to ready and not yet `failed`: calls may wait for it, up to their deadline.
   * Backoff between failed attempts counts as on its way; only `failed` refuses at once.
   */
  get recovering(): boolean {
    return (this.state === "connecting" || this.state === "reconnecting") && !this.#closing;
  }

  #startHost(): void {
    // A host that never starts is a worker that died before its host ran: replaced the same way.
    // A new host (the first, or a replacement) connects in the era the server's connections last found.
    const host = this.#supervisor.start({ ...this.#spec, prior: this.#owner.prior() }, (error) => {
      if (host !== this.#host) return;
      host.terminate();
      this.#onHostGone(host, error);
    });
    this.#host = host;
    this.#remote = wrap<HostApi>(host.port as never);
    host.port.once("message", host.heard);
    host.port.on("message", (data: unknown) => {
      if (!isHostEvent(data)) return;
      if (host === this.#host) this.#onEvent(data);
      else this.#reapLate(data);
    });
    this.#pingSentAt = 0;
    const heartbeatMs = this.#supervisor.heartbeatMs;
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(this.#beat, Math.max(50, heartbeatMs / 2), host);
      this.#heartbeat.unref();
    }
    // Port 'close' and task rejection both mean the worker is gone; whichever comes first wins.
    host.port.once("close", () => {
      this.#closedPorts.add(host.port);
      this.#onHostGone(host, undefined);
    });
    host.done.then(
      () => this.#onHostGone(host, undefined),
      (error: unknown) => this.#onHostGone(host, error ?? new Error("worker exited")),
    );
  }

  #onEvent(event: HostEvent): void {
    switch (event.ev) {
      case "state": {
        this.threadId = event.threadId;
        this.failedAttempts = event.failedAttempts;
        if (event.error) this.lastError = event.error;
        const wasReady = this.#hostReady;
        // The host posts state "ready" right after its "ready" event: that one must not clear it.
        this.#hostReady = event.state === "ready" && wasReady;
        const lost = event.state === "reconnecting" && event.failedAttempts === 0 && wasReady;
        if (lost) this.restarts++;
        if (event.failedAttempts > 0 || event.state === "failed") this.#markFirstResult();
        // "closing"/"closed" from the host are ours to report, once the worker is free. A host started
        // as a probe after repeated worker deaths says "connecting": the connection stays failed until it is ready.
        if (event.state !== "closed" && event.state !== "ready" && !(this.state === "failed" && event.state === "connecting")) {
          this.#setState(this.#closing ? "closing" : event.state, lost ? { cause: "server", error: event.error } : undefined);
        }
        break;
      }
      case "pid":
        // The host reopened its server and ended the one before itself: that group is not ours to end any more.
        if (this.pid !== undefined && this.pid !== event.pid) this.#supervisor.forget(this.pid);
        this.pid = event.pid;
        this.#supervisor.track(event.pid, event.startTime);
        break;
      case "ready":
        this.#hostReady = true;
        this.threadId = event.threadId;
        if (event.pid !== undefined) this.pid = event.pid;
        this.tools = event.tools;
        this.serverInfo = event.server;
        this.verdict = event.verdict;
        this.failedAttempts = 0;
        this.lastError = undefined;
        this.#crashes = 0;
        this.#owner.onTools(this);
        this.#setState("ready");
        this.#markFirstResult();
        break;
      case "tools":
        this.tools = event.tools;
        this.#owner.onTools(this);
        break;
      case "log":
        this.#owner.onLog(this, event);
        break;
      case "progress": {
        const onProgress = this.#pending.get(event.callId)?.onProgress;
        // The caller's code, inside this port listener: it must not throw into it.
        if (onProgress) callSafely(onProgress, event.progress, "onProgress");
        break;
      }
      case "results":
        for (const r of event.results) this.#onResult(r.callId, r.outcome);
        break;
      case "pong":
        this.#pingSentAt = 0;
        break;
    }
  }

  /**
   * The heartbeat: while calls are in flight here, a ping to the host, which answers from its port
   * listener. A worker can stop reading its port without dying (a regex in a tool's schema backtracking
   * forever on a caller's argument): its calls would only time out, one by one, for ever. One that has not
   * answered within `limits.workerHeartbeatMs` is terminated and replaced as a dead worker is. Once sent,
   * a ping is waited for even when the calls have ended meanwhile (they timed out on a wedged worker).
   */
  readonly #beat = (host: HostHandle): void => {
    if (host !== this.#host || this.#closing) return;
    if (this.#pingSentAt === 0) {
      if (this.inFlight > 0) this.#ping(host);
      return;
    }
    const heartbeatMs = this.#supervisor.heartbeatMs;
    if (Date.now() - this.#pingSentAt < heartbeatMs) return;
    // Timers run before the port's messages in a turn of the event loop: after a main thread that was
    // blocked itself, the pong may be waiting behind this timer. Only silence after those counts.
    setImmediate(() => {
      if (host !== this.#host || this.#closing || this.#pingSentAt === 0) return;
      host.terminate();
      this.#onHostGone(host, new Error(`worker thread stopped answering: no heartbeat for ${heartbeatMs} ms`));
    });
  };

  /**
   * Changes state; a loss is reported only once the state says so, so that a call made from a
   * `connection:lost` or `worker:crash` handler waits for the connection instead of being sent to it.
   */
  #setState(state: ConnectionState, lost?: { cause: "server" | "worker"; error: unknown }): void {
    const previous = this.state;
    this.state = state;
    if (lost) this.#owner.onLost(this, lost.cause, lost.error);
    if (previous !== state) this.#owner.onState(this, previous);
  }

  #ping(host: HostHandle): void {
    this.#pingSentAt = Date.now();
    host.port.postMessage(PING);
  }

  #onHostGone(host: HostHandle, error: unknown): void {
    if (host !== this.#host) return;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#outbox = [];
    this.#host = undefined;
    this.#remote = undefined;
    this.#hostReady = false;
    this.#retire(host);
    const pid = this.pid;
    if (this.#closing) {
      this.pid = undefined;
      this.#failAll(this.#closeCode, "connection closed");
      if (pid !== undefined) this.#supervisor.release(pid);
      this.#setState("closed");
      this.#owner.onClosed(this);
      return;
    }
    // The worker died (or returned without being asked to): reap what it left, settle, replace.
    if (pid !== undefined) void this.#supervisor.reap(pid);
    this.#failAll("CONNECTION_LOST", `worker thread died: ${describeError(error)}`);
    this.#crashes++;
    this.restarts++;
    this.lastError = { code: "CONNECTION_LOST", message: `worker thread died: ${describeError(error)}` };
    const { maxAttempts, initialDelayMs, maxDelayMs, probeIntervalMs } = this.#spec.reconnect;
    this.failedAttempts = this.#crashes > 1 ? this.#crashes - 1 : 0;
    // As in the host: the first replacement is immediate, maxAttempts more back off, then it is failed and probed.
    const delay = this.#crashes <= 1 ? 0 : this.#crashes > maxAttempts + 1 ? probeIntervalMs : backoffDelay(this.#crashes - 1, initialDelayMs, maxDelayMs);
    // The loss's events still name the dead server's pid.
    this.#setState(this.#crashes > maxAttempts + 1 ? "failed" : "reconnecting", { cause: "worker", error });
    this.pid = undefined;
    this.#markFirstResult();
    const timer = setTimeout(() => {
      if (!this.#closing) this.#startHost();
    }, delay);
    timer.unref();
  }

  /**
   * Closes a gone host's port once its worker has ended, reaping any server the host reported meanwhile:
   * a "pid" still queued (the host was given up on just as it spoke) or posted while its worker was being
   * terminated would otherwise be lost with the port, and that server would outlive the pool.
   */
  #retire(host: HostHandle): void {
    void host.done
      .catch(() => {})
      .then(() => {
        // Not in this turn: receiveMessageOnPort() on a port whose peer just closed it, while its 'close'
        // is being emitted (and in the microtasks after), crashes Node 20 with SIGSEGV. A worker that dies
        // of its heap closes its port that way, and a close() made from the crash's handler ends the task
        // in that same turn (issue 12, item 1). A port that emitted 'close' has delivered everything anyway.
        setImmediate(() => {
          if (!this.#closedPorts.has(host.port)) {
            for (let m = receiveMessageOnPort(host.port); m; m = receiveMessageOnPort(host.port)) {
              if (isHostEvent(m.message)) this.#reapLate(m.message);
            }
          }
          host.port.close();
        });
      });
  }

  /** What a retired host still says: only a server it started matters. */
  #reapLate(event: HostEvent): void {
    if (event.ev !== "pid") return;
    this.#supervisor.track(event.pid, event.startTime);
    void this.#supervisor.reap(event.pid);
  }

  /**
   * Sends one tool call. `done` is always called, exactly once: with the result, or McpPoolError on
   * timeout, abort, the connection's loss, or the worker's death — the port alone would leave it
   * pending. A call this connection cannot take is refused at once with NOT_SENT data.
   */
  call(tool: string, args: Record<string, unknown>, options: CallOptions, done: CallDone): void {
    const host = this.#host;
    if (!host || this.state !== "ready") {
      // Never sent: the pool may route it again (see NOT_SENT).
      return done(new McpPoolError("CONNECTION_LOST", `connection ${this.id} is ${this.state}`, { server: this.server, tool, data: NOT_SENT }), undefined);
    }
    const callId = ++nextCallId;
    this.inFlight++;
    this.calls++;
    this.lastUsed = Date.now();
    const pending: PendingCall = {
      done,
      tool,
      timer: setTimeout(() => this.#cancel(callId, "TIMEOUT", `tool call timed out after ${options.timeoutMs} ms`), options.timeoutMs),
      signal: options.signal,
      onAbort: undefined,
      onProgress: options.onProgress,
    };
    if (options.signal) {
      pending.onAbort = () => this.#cancel(callId, "ABORTED", abortMessage(options.signal!));
      options.signal.addEventListener("abort", pending.onAbort, { once: true });
    }
    this.#pending.set(callId, pending);
    // A plain message, not comlink, with the other calls of this tick (see CallBatch); answers come as "results".
    if (this.#outbox.length === 0) process.nextTick(this.#flushCalls);
    this.#outbox.push({ callId, name: tool, args, timeoutMs: options.timeoutMs, progress: options.onProgress !== undefined });
  }

  readonly #flushCalls = (): void => {
    const calls = this.#outbox;
    if (calls.length === 0) return;
    this.#outbox = [];
    // No host: it died this tick, and #onHostGone settled these calls already.
    const port = this.#host?.port;
    if (!port) return;
    try {
      port.postMessage({ op: "calls", calls } satisfies CallBatch);
    } catch {
      // One call's arguments cannot be cloned: send them one by one, so that only that call fails.
      for (const call of calls) {
        try {
          port.postMessage({ op: "calls", calls: [call] } satisfies CallBatch);
        } catch (error) {
          // Only the arguments can fail to clone (e.g. a Proxy, which the main thread's JSON check lets through).
          const message = `arguments cannot be sent: ${error instanceof Error ? error.message : String(error)}`;
          this.#settle(call.callId, undefined, new McpPoolError("INVALID_ARGUMENTS", message, { server: this.server, tool: this.#pending.get(call.callId)?.tool, cause: error }));
        }
      }
    }
  };

  #onResult(callId: number, outcome: Outcome<CallToolResult>): void {
    if (outcome.ok) return this.#settle(callId, outcome.value, undefined);
    // The host saw its link die before we heard of it: stop routing here until it is ready again.
    if (wasNotSent(outcome.error) && this.state === "ready") this.#setState("reconnecting");
    const pending = this.#pending.get(callId);
    if (pending) this.#settle(callId, undefined, McpPoolError.fromWire(outcome.error, this.server, pending.tool));
  }

  #cancel(callId: number, code: "TIMEOUT" | "ABORTED", message: string): void {
    const pending = this.#pending.get(callId);
    if (!pending) return;
    this.#settle(callId, undefined, new McpPoolError(code, message, { server: this.server, tool: pending.tool }));
    // The call may still wait in this tick's batch: it must reach the host before its cancel does.
    this.#flushCalls();
    // Tell the server too (notifications/cancelled), without waiting for it.
    this.#remote?.cancel(callId, message).catch(() => {});
    // A call that timed out may be what wedges its worker: the heartbeat watches it from here on.
    if (this.#host && this.#pingSentAt === 0 && this.#supervisor.heartbeatMs > 0) this.#ping(this.#host);
  }

  #settle(callId: number, result: CallToolResult | undefined, error: McpPoolError | undefined): void {
    const pending = this.#pending.get(callId);
    if (!pending) return;
    this.#pending.delete(callId);
    clearTimeout(pending.timer);
    if (pending.onAbort) pending.signal!.removeEventListener("abort", pending.onAbort);
    this.inFlight--;
    this.lastUsed = Date.now();
    // The capacity is free before the call's owner hears of it (it may route a retry right away).
    this.#owner.onIdle(this);
    pending.done(error, result);
  }

  #failAll(code: "CONNECTION_LOST" | "POOL_CLOSED", message: string): void {
    if (this.#pending.size === 0) return;
    for (const [callId, pending] of this.#pending) {
      this.#settle(callId, undefined, new McpPoolError(code, message, { server: this.server, tool: pending.tool }));
    }
  }

  /** Closes the host (transport, process group) and frees the worker. Idempotent. */
  close(code: "CONNECTION_LOST" | "POOL_CLOSED" = "CONNECTION_LOST"): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closeCode = code;
    // Closed before its first attempt ended: that attempt is over, and pool.ready() must not wait for it.
    this.#markFirstResult();
    this.#setState("closing");
    this.#closing = this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    // Calls still here are cut off (the drain deadline passed, or nothing waits for them): they fail
    // with the close's code now, not with the host's "cancelled" outcome (ABORTED is for the caller's signal).
    this.#failAll(this.#closeCode, "connection closed");
    const host = this.#host;
    if (!host) {
      this.#setState("closed");
      this.#owner.onClosed(this);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const ended = host.done.then(() => true, () => true);
    const closed = await Promise.race([
      Promise.all([this.#remote!.close().catch(() => {}), ended]).then(() => true),
      ended.then(() => new Promise<boolean>((r) => setTimeout(() => r(true), 50))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (!closed) {
      // The host did not finish its teardown in time (a hung worker): terminate it and reap.
      const pid = this.pid;
      host.terminate();
      if (pid !== undefined) await this.#supervisor.reap(pid);
    }
    await ended;
    this.#onHostGone(host, undefined);
  }
}

function abortMessage(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  try {
    return reason instanceof Error ? `aborted: ${reason.message}` : reason !== undefined ? `aborted: ${String(reason)}` : "aborted";
  } catch {
    // A reason that cannot be made a string (no prototype, or a throwing toString): the caller's value.
    return "aborted";
  }
}

function describeError(error: unknown): string {
  if (error === undefined) return "exited";
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ? `${(error as NodeJS.ErrnoException).code}: ${error.message}` : error.message;
  return String(error);
}

export function toPoolError(error: unknown, server: string, tool?: string): McpPoolError {
  if (error instanceof McpPoolError) return error;
  return new McpPoolError("PROTOCOL_ERROR", error instanceof Error ? error.message : String(error), { server, tool, cause: error });
}

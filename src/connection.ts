/**
 * The main thread's handle on one connection: a host task in its own worker, the comlink proxy
 * to it, and the calls in flight on it. It never touches the transport; it asks the host.
 *
 * When the worker dies, this handle reaps the server's process group, settles its calls with
 * CONNECTION_LOST and starts a replacement host in a fresh worker under the same id.
 *
 * Over 400 lines, and one concern: the life of a host as the main thread sees it (start, state, heartbeat,
 * death, replacement, close) and the requests in flight on it, and the server's requests being answered
 * for them, are one state machine; every transition decides what happens to those requests.
 */
import { MessageChannel } from "node:worker_threads";
import { expose, transfer, wrap, type Remote } from "comlink";
import { backoffDelay } from "./common/backoff.js";
import type { Call } from "./call.js";
import { McpPoolError } from "./errors.js";
import { NOT_SENT, PING, RESULT_SLOTS, wasNotSent, wireError, type Catalogs, type ClientCapabilityKind, type ConnectionSpec, type ConnectionState, type HostControl, type HostState, type MainControl, type Outcome, type ServerInfo, type ToHost, type ToMain, type Verdict, type WireError, type WireRequest, type WireResults } from "./common/protocol.js";
import type { HostHandle, Supervisor } from "./supervisor.js";
import type { LoggingLevel } from "@modelcontextprotocol/client";
import type { HeadersOutcome } from "./server-requests.js";

/** How long a host gets to close its transport before its worker is terminated. */
const CLOSE_GRACE_MS = 5_000;

export interface ConnectionOwner {
  onState(conn: Connection, previous: ConnectionState): void;
  /** Lists of the server changed on this connection (they are in `conn.catalogs`). */
  onCatalogs(conn: Connection, kinds: readonly (keyof Catalogs)[]): void;
  onLog(conn: Connection, level: string, logger: string | undefined, data: unknown): void;
  onResourceUpdated(conn: Connection, uri: string): void;
  /** A request finished: capacity freed on this connection. */
  onIdle(conn: Connection): void;
  /** A ready connection was lost: its server died or hung (`server`), or its worker died (`worker`). */
  onLost(conn: Connection, cause: "server" | "worker", error: unknown): void;
  /** The connection is closed for good and its worker is free. */
  onClosed(conn: Connection): void;
  /** The server's era as its connections last found it, for a host about to start (see Verdict). */
  prior(): Verdict | undefined;
  /**
   * A request from the server (sampling, elicitation, roots), made for `call` when the host could tell
   * (else undefined): answered by the handler its routing picks. Never rejects.
   */
  serverRequest(conn: Connection, call: Call | undefined, method: string, params: unknown, signal: AbortSignal): Promise<Outcome<unknown>>;
  /** The log level set for the server (pool.setLoggingLevel), for a host about to start. */
  logLevel(): LoggingLevel | undefined;
  /** What `call`'s session can answer that this connection does not declare (see WireRequest.capabilities). */
  moreCapabilities(call: Call): ClientCapabilityKind[] | undefined;
  /** Headers for the next connect of `conn` (see ConnectionSpec.dynamicHeaders). Never rejects. */
  headers(conn: Connection): Promise<HeadersOutcome>;
}

export class Connection {
  readonly id: string;
  readonly server: string;
  readonly sessionId: string | undefined;
  state: ConnectionState = "connecting";
  /** Connect attempts that failed since it was last ready; 0 means it is on its way (calls may wait). */
  failedAttempts = 0;
  lastError: WireError | undefined;
  /**
   * What a headers function threw when this connection last asked for headers (undefined once one answered):
   * the cause of the SERVER_UNAVAILABLE its failed connect leads to. It never crosses to the worker.
   */
  headersError: unknown;
  pid: number | undefined;
  threadId: number | undefined;
  inFlight = 0;
  calls = 0;
  restarts = 0;
  /** What the server listed on this connection, last time it did. */
  catalogs: Catalogs | undefined;
  /** What the server said of itself when this connection last became ready. */
  serverInfo: ServerInfo | undefined;
  /** The server's era as this connection last found it. */
  verdict: Verdict | undefined;
  /** The legacy era over Streamable HTTP: the server's `Mcp-Session-Id` on this connection, last time it was ready. */
  mcpSessionId: string | undefined;
  /** Resource URIs subscribed to on this connection (its host subscribes again after every reopen). */
  readonly subscriptions = new Set<string>();
  /** Last time a call finished or started here (for idle eviction). */
  lastUsed = Date.now();

  readonly #spec: ConnectionSpec;
  readonly #supervisor: Supervisor;
  readonly #owner: ConnectionOwner;
  #host: HostHandle | undefined;
  #control: Remote<HostControl> | undefined;
  /** Requests in flight here, by their id on this connection. */
  readonly #pending = new Map<number, Call>();
  /** Server requests whose handlers run now, by the current host's id of them: aborted when they end there or the host goes. */
  readonly #asks = new Map<number, AbortController>();
  #nextId = 0;
  /** Requests made this tick, posted together at its end (one data-plane message per tick). */
  #outbox: WireRequest[] = [];
  #closing: Promise<void> | undefined;
  #crashes = 0;
  /** The host's own last word: ready or not (our `state` may run ahead of it, see #onData). */
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
    // A new host (the first, or a replacement) connects in the era the server's connections last found,
    // and subscribes to what this connection is subscribed to.
    const spec = { ...this.#spec, prior: this.#owner.prior(), subscriptions: [...this.subscriptions], logLevel: this.#owner.logLevel() };
    const host = this.#supervisor.start(spec, (error) => {
      if (host !== this.#host) return;
      host.terminate();
      this.#onHostGone(host, error);
    });
    this.#host = host;
    this.#control = wrap<HostControl>(host.control as never);
    host.data.on("message", (message: ToMain) => {
      // The worker's entry launched the server before the host loaded: reaped with the worker if it dies first.
      if (!Array.isArray(message) && message.op === "spawned") this.#serverStarted(host, message.pid, message.startTime);
      else if (host === this.#host) this.#onData(message);
    });
    const back = new MessageChannel();
    expose(this.#mainControl(host), back.port1 as never);
    // Closed by the worker's end when it goes (after what it posted is delivered); never holds the process.
    back.port1.unref();
    this.#control.open(transfer(back.port2, [back.port2 as never])).then(host.heard, () => {});
    this.#pingSentAt = 0;
    const heartbeatMs = this.#supervisor.heartbeatMs;
    if (heartbeatMs > 0) {
      this.#heartbeat = setInterval(this.#beat, Math.max(50, heartbeatMs / 2), host);
      this.#heartbeat.unref();
    }
    // Port 'close' and task rejection both mean the worker is gone; whichever comes first wins.
    host.data.once("close", () => this.#onHostGone(host, undefined));
    host.done.then(
      () => this.#onHostGone(host, undefined),
      (error: unknown) => this.#onHostGone(host, error ?? new Error("worker exited")),
    );
  }

  /**
   * The control plane's main-thread side for one host. A host given up on (replaced, or closed) may still
   * speak: only a server it started matters then, and is reaped (its port stays open until its worker ends,
   * so such a word is not lost).
   */
  #mainControl(host: HostHandle): MainControl {
    return {
      state: (state) => {
        if (host === this.#host) this.#onState(state);
        else if (state.ready?.pid !== undefined) this.#reapLate(state.ready.pid, undefined);
      },
      catalogs: (changed) => {
        if (host !== this.#host || !this.catalogs) return;
        this.catalogs = { ...this.catalogs, ...changed };
        this.#owner.onCatalogs(this, Object.keys(changed) as (keyof Catalogs)[]);
      },
      pid: (pid, startTime) => this.#serverStarted(host, pid, startTime),
      log: (level, logger, data) => {
        if (host === this.#host) this.#owner.onLog(this, level, logger, data);
      },
      resourceUpdated: (uri) => {
        if (host === this.#host && this.subscriptions.has(uri)) this.#owner.onResourceUpdated(this, uri);
      },
      serverRequest: (id, method, params, origin) => this.#serverRequest(host, id, method, params, origin),
      headers: async () => {
        const got = await this.#owner.headers(this);
        if (host !== this.#host) return { ok: false, error: wireError("CONNECTION_LOST", "connection replaced") };
        this.headersError = got.ok ? undefined : got.cause;
        return got.ok ? got : { ok: false, error: got.error };
      },
      serverRequestEnded: (id, reason) => {
        if (host === this.#host) this.#asks.get(id)?.abort(new Error(reason));
      },
    };
  }

  /** `host` started a server (process group `pid`): tracked, so that it never outlives the host's worker. */
  #serverStarted(host: HostHandle, pid: number, startTime: string | undefined): void {
    if (host !== this.#host) return this.#reapLate(pid, startTime);
    // The host reopened its server and ended the one before itself: that group is not ours to end any more.
    if (this.pid !== undefined && this.pid !== pid) this.#supervisor.forget(this.pid);
    this.pid = pid;
    this.#supervisor.track(pid, startTime);
  }

  /**
   * A server's request for a call (`origin`, its id here) or for the connection: its handler's signal aborts
   * when the host says the request ended, when that call ends, or when the host goes.
   */
  async #serverRequest(host: HostHandle, id: number, method: string, params: unknown, origin: number | undefined): Promise<Outcome<unknown>> {
    if (host !== this.#host) return { ok: false, error: wireError("CONNECTION_LOST", "connection replaced", { mcpCode: -32603 }) };
    const call = origin === undefined ? undefined : this.#pending.get(origin);
    // The call ended between the server's asking and now: nobody is left to answer for it.
    if (origin !== undefined && !call) return { ok: false, error: wireError("ABORTED", `${method}: the call that caused it has ended`, { mcpCode: -32603 }) };
    const controller = new AbortController();
    this.#asks.set(id, controller);
    const signal = call ? AbortSignal.any([controller.signal, (call.asks ??= new AbortController()).signal]) : controller.signal;
    try {
      return await this.#owner.serverRequest(this, call, method, params, signal);
    } finally {
      if (this.#asks.get(id) === controller) this.#asks.delete(id);
    }
  }

  #onState(s: HostState): void {
    this.threadId = s.threadId;
    this.failedAttempts = s.failedAttempts;
    if (s.error) this.lastError = s.error;
    const wasReady = this.#hostReady;
    this.#hostReady = s.ready !== undefined;
    if (s.ready) {
      const { catalogs, server, verdict, pid, sessionId } = s.ready;
      if (pid !== undefined) this.pid = pid;
      this.mcpSessionId = sessionId;
      this.catalogs = catalogs;
      this.serverInfo = server;
      this.verdict = verdict;
      this.lastError = undefined;
      this.#crashes = 0;
      this.#owner.onCatalogs(this, ["tools", "resources", "resourceTemplates", "prompts"]);
      this.#setState("ready");
      this.#markFirstResult();
      return;
    }
    const lost = s.state === "reconnecting" && s.failedAttempts === 0 && wasReady;
    if (lost) this.restarts++;
    if (s.failedAttempts > 0 || s.state === "failed") this.#markFirstResult();
    // "closing"/"closed" from the host are ours to report, once the worker is free. A host started as a
    // probe after repeated worker deaths says "connecting": the connection stays failed until it is ready.
    if (s.state !== "closed" && s.state !== "ready" && !(this.state === "failed" && s.state === "connecting")) {
      this.#setState(this.#closing ? "closing" : s.state, lost ? { cause: "server", error: s.error } : undefined);
    }
  }

  #onData(message: ToMain): void {
    if (Array.isArray(message)) return this.#onResults(message);
    switch (message.op) {
      case "progress":
        this.#pending.get(message.id)?.progress(message.progress);
        break;
      case "pong":
        this.#pingSentAt = 0;
        break;
    }
  }

  /** A batch of answers (flat, see WireResults). */
  #onResults(batch: WireResults): void {
    for (let i = 0; i < batch.length; i += RESULT_SLOTS) {
      const call = this.#take(batch[i] as number);
      if (!call) continue;
      const rpcId = batch[i + 3] as number | undefined;
      if (rpcId !== undefined) call.telemetry?.answered(call, rpcId);
      if (batch[i + 1] === true) {
        if (call.kind.subscription) this.#subscribed(call);
        call.settle(undefined, batch[i + 2]);
        continue;
      }
      const error = batch[i + 2] as WireError;
      // The host saw its link die before we heard of it: stop routing here until it is ready again.
      if (wasNotSent(error) && this.state === "ready") this.#setState("reconnecting");
      call.returned(McpPoolError.fromWire(error, this.server, call.tool));
    }
  }

  /** A subscription's request succeeded: this connection holds it now, or no longer. */
  #subscribed(call: Call): void {
    const uri = call.params.uri as string;
    if (call.kind.subscription === "add") this.subscriptions.add(uri);
    else this.subscriptions.delete(uri);
  }

  /**
   * Sends one request. It is ours until its answer (settled here), its own deadline or abort (the call
   * then comes back through `abandon`), or this connection's loss (given back through `returned`).
   */
  send(call: Call): void {
    const timeoutMs = call.deadline - Date.now();
    if (timeoutMs <= 0) return call.settle(call.error("TIMEOUT", "deadline passed while waiting for a connection"));
    if (!this.#host || this.state !== "ready") {
      // Never sent: routed again (see NOT_SENT).
      return call.returned(new McpPoolError("CONNECTION_LOST", `connection ${this.id} is ${this.state}`, { server: this.server, tool: call.tool, data: NOT_SENT }));
    }
    const id = ++this.#nextId;
    call.conn = this;
    call.id = id;
    this.#pending.set(id, call);
    this.inFlight++;
    this.calls++;
    this.lastUsed = Date.now();
    if (this.#outbox.length === 0) process.nextTick(this.#flush);
    const request: WireRequest = { id, method: call.kind.method, params: call.params, timeoutMs, progress: call.onProgress !== undefined };
    if (call.span !== undefined) {
      request.traced = true;
      call.telemetry!.sent(call, this);
    }
    // Only a session with handlers of its own has anything more to declare.
    if (call.session?.hasHandlers && this.verdict?.kind === "modern") {
      const more = this.#owner.moreCapabilities(call);
      if (more) request.capabilities = more;
    }
    this.#outbox.push(request);
  }

  /** A call in flight here ended on the caller's side (deadline, abort): the host cancels it on the server. */
  abandon(call: Call, reason: string): void {
    if (this.#take(call.id) !== call) return;
    // The request may still wait in this tick's batch: it must reach the host before its cancel does.
    this.#flush();
    void this.#control?.cancel(call.id, reason).catch(() => {});
    // A request that timed out may be what wedges its worker: the heartbeat watches it from here on.
    if (this.#host && this.#pingSentAt === 0 && this.#supervisor.heartbeatMs > 0) this.#ping(this.#host);
  }

  /** Takes a request off this connection; the capacity is free before its owner hears of it (a retry may be routed at once). */
  #take(id: number): Call | undefined {
    const call = this.#pending.get(id);
    if (!call) return undefined;
    this.#pending.delete(id);
    call.conn = undefined;
    this.inFlight--;
    this.lastUsed = Date.now();
    this.#owner.onIdle(this);
    return call;
  }

  readonly #flush = (): void => {
    const requests = this.#outbox;
    if (requests.length === 0) return;
    this.#outbox = [];
    // No host: it died this tick, and #onHostGone gave these calls back already.
    const port = this.#host?.data;
    if (!port) return;
    try {
      port.postMessage({ op: "requests", requests } satisfies ToHost);
    } catch {
      // One request's arguments cannot be cloned: send them one by one, so that only that call fails.
      for (const request of requests) {
        try {
          port.postMessage({ op: "requests", requests: [request] } satisfies ToHost);
        } catch (error) {
          // Only the arguments can fail to clone (e.g. a Proxy, which the main thread's JSON check lets through).
          const call = this.#take(request.id);
          call?.settle(new McpPoolError("INVALID_ARGUMENTS", `arguments cannot be sent: ${error instanceof Error ? error.message : String(error)}`, { server: this.server, tool: call.tool, cause: error }));
        }
      }
    }
  };

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

  #ping(host: HostHandle): void {
    this.#pingSentAt = Date.now();
    host.data.postMessage(PING);
  }

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

  #onHostGone(host: HostHandle, error: unknown): void {
    if (host !== this.#host) return;
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#outbox = [];
    this.#host = undefined;
    this.#control = undefined;
    for (const ask of this.#asks.values()) ask.abort(new Error("the connection was lost"));
    this.#asks.clear();
    this.#hostReady = false;
    this.#retire(host);
    const pid = this.pid;
    if (this.#closing) {
      this.pid = undefined;
      this.#returnAll(this.#closeCode, "connection closed");
      if (pid !== undefined) this.#supervisor.release(pid);
      this.#setState("closed");
      this.#owner.onClosed(this);
      return;
    }
    // The worker died (or returned without being asked to): reap what it left, settle, replace.
    if (pid !== undefined) void this.#supervisor.reap(pid);
    this.#returnAll("CONNECTION_LOST", `worker thread died: ${describeError(error)}`);
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
   * Closes a gone host's data port once its worker has ended. Its control port stays with comlink, which
   * hears what the host still said (a server it started, see #mainControl) until the worker's end closes it.
   */
  #retire(host: HostHandle): void {
    void host.done
      .catch(() => {})
      .then(() =>
        setImmediate(() => {
          host.data.close();
          // comlink's listener would keep it (and the process) alive if the worker never took its end.
          host.control.close();
        }),
      );
  }

  /** A server a retired host started: not ours to keep. */
  #reapLate(pid: number, startTime: string | undefined): void {
    this.#supervisor.track(pid, startTime);
    void this.#supervisor.reap(pid);
  }

  /** Gives every request in flight back to its call (lost with the worker, or cut off by the close). */
  #returnAll(code: "CONNECTION_LOST" | "POOL_CLOSED", message: string): void {
    if (this.#pending.size === 0) return;
    for (const id of [...this.#pending.keys()]) {
      const call = this.#take(id);
      call?.returned(new McpPoolError(code, message, { server: this.server, tool: call.tool }));
    }
  }

  /**
   * Why its last connect attempt failed, as the cause of the error a caller gets: what a headers function
   * threw, else an error saying the attempt's failure, with its HTTP status (a 401) as `status`.
   */
  failureCause(): unknown {
    if (this.headersError !== undefined) return this.headersError;
    const last = this.lastError;
    if (!last) return undefined;
    const status = (last.data as { httpStatus?: unknown } | undefined)?.httpStatus;
    return Object.assign(new Error(last.message), typeof status === "number" ? { status } : {});
  }

  /** Asks the host to apply the server's log level; resolves when it has, or after `timeoutMs` (never rejects). */
  async setLoggingLevel(level: LoggingLevel, timeoutMs: number): Promise<void> {
    const control = this.#control;
    if (!control || this.#closing) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([control.setLoggingLevel(level).catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
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
    this.#returnAll(this.#closeCode, "connection closed");
    const host = this.#host;
    if (!host) {
      this.#setState("closed");
      this.#owner.onClosed(this);
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const ended = host.done.then(() => true, () => true);
    const closed = await Promise.race([
      Promise.all([this.#control!.close().catch(() => {}), ended]).then(() => true),
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

function describeError(error: unknown): string {
  if (error === undefined) return "exited";
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ? `${(error as NodeJS.ErrnoException).code}: ${error.message}` : error.message;
  return String(error);
}


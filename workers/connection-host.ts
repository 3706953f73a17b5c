/**
 * The connection host: one long-lived piscina task per MCP connection.
 *
 * It alone opens the transport, reopens it after the server dies (backoff with full jitter, then slow
 * probes), pings it to catch a hung server, and tears it down. It talks to the main thread on two
 * planes (src/common/protocol.ts): requests and their results on the data port (requests.ts), and
 * everything else through comlink on the control port: the main thread calls `HostControl` (open,
 * cancel, close), the host calls back the `MainControl` proxy it got in `open()` (state with the
 * catalogs, pid, logs, resource updates), never waiting for it. Nothing throws across either port.
 *
 * Over 400 lines, one concern: the connection's lifecycle (connect, with the headers asked for first;
 * reopen; keepalive; close). Requests, listings and subscriptions are their own modules.
 */
import { threadId } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { expose, releaseProxy, wrap, type Remote } from "comlink";
import { LOG_LEVEL_META_KEY, SseError, type LoggingLevel } from "@modelcontextprotocol/client";
import {
  isToHost,
  PONG,
  wireError,
  type Catalogs,
  type ConnectionSpec,
  type ConnectionState,
  type HostControl,
  type HostState,
  type HostTask,
  type MainControl,
  type ServerInfo,
  type Verdict,
  type WireError,
} from "../src/common/protocol.js";
import { backoffDelay } from "../src/common/backoff.js";
import { lowerThreadPriority } from "./priority.js";
import { CallStreams, messageOf } from "./http-calls.js";
import { closeLink, createTransport, describe, endHttpSession, httpStatusOf, isNegotiationFailure, negotiationOf, pidOf, PoolClient, type Link } from "./link.js";
import { Listings, type ListingHost } from "./listings.js";
import { Requests, type RequestHost } from "./requests.js";
import { capabilitiesOf, ServerAsks } from "./server-requests.js";
import { Subscriptions, type SubscriptionHost } from "./subscriptions.js";
import { discardServer, type Launched } from "./server-process.js";
import { deferredValidator } from "./validators.js";
import { IdleCollector } from "./idle-gc.js";

const CLIENT_INFO = { name: "mcp-worker-pool", version: "0.1.0" };
/** The `logger` of the host's own log messages (a server's carry the server's). */
const HOST_LOGGER = "mcp-worker-pool";
/**
 * Attempts in a row that fail under a verdict without a word from the server (it exits, or nothing answers)
 * before the verdict is dropped and the server probed: a server down for a restart keeps it, one that exits
 * on a request of the wrong era is found out.
 */
const UNHEARD_BEFORE_PROBE = 3;

/**
 * How long the `server/discover` probe may take. Over stdio a silent probe means a legacy server, and the
 * `initialize` that follows needs the rest of the connect deadline: half of it. Over HTTP silence is an outage
 * (the SDK rejects, nothing follows in this attempt): the whole deadline, as a legacy connect's `initialize`
 * gets, so that a server slow to answer under load is not taken for a dead one at half the time.
 */
export function probeTimeoutMs(spec: Pick<ConnectionSpec, "transport" | "connectTimeoutMs">): number {
  return spec.transport === "stdio" ? Math.max(1, Math.floor(spec.connectTimeoutMs / 2)) : spec.connectTimeoutMs;
}

/** The task as the worker's entry hands it over: with the server it launched ahead, for stdio (host-entry.ts). */
export type EntryTask = HostTask & { early?: Launched };

export default async function connectionHost(task: EntryTask): Promise<void> {
  lowerThreadPriority(task.spec.nice);
  await new ConnectionHost(task).done;
}

type Ready = NonNullable<HostState["ready"]>;

export class ConnectionHost implements HostControl, RequestHost, ListingHost, SubscriptionHost {
  readonly spec: ConnectionSpec;
  readonly data: MessagePort;
  readonly #control: MessagePort;
  readonly listings: Listings;
  readonly subscriptions: Subscriptions;
  /** Requests from the server, answered by the main thread's handlers. */
  readonly asks: ServerAsks;
  readonly #requests: Requests;
  /** The main thread's side of the control plane, from `open()`. */
  #main: Remote<MainControl> | undefined;
  #state: ConnectionState = "connecting";
  #link: Link | undefined;
  #closing = false;
  #wake: (() => void) | undefined;
  /** Resolves when the host is finished: the task returns. */
  readonly done: Promise<void>;
  #markDone!: () => void;
  /** The era this server was last found to speak: the next connect tries it first (see #open). */
  #prior: Verdict | undefined;
  /** Attempts in a row that failed under #prior without a word from the server. */
  #unheard = 0;
  #keepalive: NodeJS.Timeout | undefined;
  /** The server's log level as the pool set it: applied at every connect (#applyLogLevel). */
  #logLevel: LoggingLevel | undefined;
  /** The last link was lost to a 401: the next one is opened with headers asked again, once (see Link.after401). */
  #after401 = false;
  /** Links retired by a 401, until the requests the server took on them have finished (see #retire). */
  readonly #retired = new Set<Link>();
  /** The server the entry launched, until the first attempt takes it (or the host ends without one). */
  #early: Launched | undefined;
  /** Gives back what each connect grew the heap into, once the connection is quiet (idle-gc.ts). */
  readonly #idle: IdleCollector;

  constructor(task: EntryTask) {
    this.spec = task.spec;
    this.#early = task.early;
    this.data = task.data;
    this.#control = task.control;
    this.#prior = task.spec.protocol === "legacy" ? undefined : task.spec.prior;
    this.#logLevel = task.spec.logLevel;
    this.done = new Promise((resolve) => (this.#markDone = resolve));
    this.listings = new Listings(this);
    this.subscriptions = new Subscriptions(this, task.spec.subscriptions);
    this.asks = new ServerAsks(() => this.#main, task.spec.clientCapabilities ?? []);
    this.#requests = new Requests(this);
    this.#idle = new IdleCollector(() => this.#requests.busy());
    // Methods are exposed by name; bind them so comlink calls land on this instance.
    expose({ open: this.open.bind(this), cancel: this.cancel.bind(this), close: this.close.bind(this), setLoggingLevel: this.setLoggingLevel.bind(this) } satisfies HostControl, task.control as never);
    // The heartbeat is answered straight from the listener: a host whose thread runs but no longer reads
    // its port is wedged, and the main thread replaces it.
    task.data.on("message", (message: unknown) => {
      if (!isToHost(message)) return;
      if (message.op === "requests") {
        this.#idle.touch();
        for (const req of message.requests) this.#requests.onRequest(req);
      }
      else if (message.op === "ping") this.data.postMessage(PONG);
    });
  }

  // ---- the control plane: what the main thread calls

  open(main: MessagePort): void {
    if (this.#main || this.#closing) return;
    this.#main = wrap<MainControl>(main as never);
    void this.#run();
  }

  cancel(id: number, reason: string): void {
    this.#requests.cancel(id, reason);
  }

  async setLoggingLevel(level: LoggingLevel): Promise<void> {
    this.#logLevel = level;
    const link = this.#link;
    if (link && !link.closed && this.#state === "ready") await this.#applyLogLevel(link);
  }

  /**
   * The log level on `link`: the 2026-07-28 era carries it in every request's `_meta` (our envelope);
   * the legacy era sets it once per connection, if the server has logging at all. A refusal is the
   * server's business: it is reported as the host's own log message, and nothing fails.
   */
  async #applyLogLevel(link: Link): Promise<void> {
    const level = this.#logLevel;
    if (level === undefined) return;
    if (link.modern) {
      link.envelope = { ...link.envelope, [LOG_LEVEL_META_KEY]: level };
      return;
    }
    if (!link.client.getServerCapabilities()?.logging) return;
    await link.client.setLoggingLevel(level, { timeout: this.spec.connectTimeoutMs }).catch((error: unknown) => this.log("warning", `logging/setLevel ${level} failed: ${messageOf(error)}`));
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#state = "closing";
      this.#wake?.();
      this.#requests.abandonAll(wireError("ABORTED", "pool closing"));
      this.asks.endAll("the connection is closing");
      // Interrupts an attempt in progress; #run() does the rest of the teardown.
      const link = this.#link;
      if (link) void endHttpSession(link).then(() => closeLink(link));
      // Never opened: nothing runs that would end the task.
      if (!this.#main) void this.#finish();
    }
    await this.done;
  }

  // ---- what the parts ask of the host (requests.ts, listings.ts, subscriptions.ts)

  state(): ConnectionState {
    return this.#state;
  }

  closing(): boolean {
    return this.#closing;
  }

  current(): Link | undefined {
    return this.#link;
  }

  ready(): boolean {
    return this.#state === "ready";
  }

  changed(catalogs: Partial<Catalogs>): void {
    this.#main?.catalogs(catalogs).catch(ignore);
  }

  updated(uri: string): void {
    this.#main?.resourceUpdated(uri).catch(ignore);
  }

  log(level: LoggingLevel, data: string): void {
    this.#main?.log(level, HOST_LOGGER, data).catch(ignore);
  }

  /** Closes a link on purpose (hang, oversize, HTTP session gone); #run() then reopens. */
  readonly lose = (link: Link, reason: WireError): void => {
    if (link.closed || link.reason) return;
    link.reason = reason;
    void closeLink(link);
  };

  // ---- the lifecycle

  #setState(state: ConnectionState, failedAttempts = 0, error?: WireError, ready?: Ready): void {
    this.#state = state;
    const message: HostState = { state, failedAttempts, threadId };
    if (error) message.error = error;
    if (ready) message.ready = ready;
    this.#main?.state(message).catch(ignore);
  }

  async #run(): Promise<void> {
    const { reconnect } = this.spec;
    let failures = 0;
    this.#setState("connecting");
    while (!this.#closing) {
      const { error, ready } = await this.#open();
      if (this.#closing) break;
      if (ready) {
        failures = 0;
        this.#after401 = false;
        const link = this.#link!;
        this.#setState("ready", 0, undefined, ready);
        this.listings.flushStale(link);
        this.#startKeepalive(link);
        this.#idle.arm();
        const superseded = await Promise.race([link.lost.then(() => false), link.superseded.then(() => true)]);
        this.#stopKeepalive();
        this.#idle.stop();
        if (this.#closing) break;
        // The loss goes out before the requests lost with it, so the main thread stops routing here first.
        this.#setState("reconnecting", 0, link.reason ?? wireError("CONNECTION_LOST", "server connection lost"));
        if (superseded) this.#retire(link);
        else this.#requests.loseAll(link);
        continue; // the first reopen after a loss is immediate
      }
      failures++;
      // The reconnect after a 401, with headers asked again, failed too: that was the one try; calls fail now
      // (SERVER_UNAVAILABLE) rather than wait through the backoff, and the server is probed as a failed one.
      if (this.#after401) {
        this.#after401 = false;
        failures = Math.max(failures, reconnect.maxAttempts + 1);
      }
      if (failures > reconnect.maxAttempts) {
        this.#setState("failed", failures, error);
        await this.#sleep(reconnect.probeIntervalMs);
      } else {
        this.#setState("reconnecting", failures, error);
        await this.#sleep(backoffDelay(failures, reconnect.initialDelayMs, reconnect.maxDelayMs));
      }
    }
    this.#stopKeepalive();
    this.#idle.stop();
    await this.#link?.client.close().catch(ignore);
    await closeLink(this.#link);
    await Promise.all([...this.#retired].map((link) => closeLink(link)));
    await this.#finish();
  }

  /** The last word: "closed", then the ports go and the task returns. */
  async #finish(): Promise<void> {
    if (this.#early) discardServer(this.#early);
    this.#early = undefined;
    this.#setState("closed");
    // Let comlink post close()'s reply, and the state above, before the ports go.
    await new Promise((resolve) => setImmediate(resolve));
    this.#markDone();
    await new Promise((resolve) => setImmediate(resolve));
    try {
      this.#main?.[releaseProxy]();
    } catch {
      // its port is gone already
    }
    this.#control.close();
    this.data.close();
  }

  /**
   * One attempt to open the connection: in the era the server was last found to speak, if that is known,
   * else as `protocol` says (see #connect). A known era that no longer holds (the server was upgraded or
   * downgraded in place) is forgotten and the server probed again, in the same attempt.
   */
  async #open(): Promise<{ error?: WireError; ready?: Ready }> {
    const prior = this.#prior;
    const { error, ready, heard } = await this.#connect(prior);
    if (!error || !prior || this.#closing) {
      this.#unheard = 0;
      return { error, ready };
    }
    // A server that answered, but not as its verdict said, changed era in place: probe it now. One that
    // said nothing is most likely down, which tells nothing of its era: the verdict stands for the next
    // attempts, but not for ever, since a server may also exit, silent, on a request of the wrong era.
    if (!heard && ++this.#unheard < UNHEARD_BEFORE_PROBE) return { error };
    this.#unheard = 0;
    this.#prior = undefined;
    if (!heard) return { error }; // the next attempt probes, after its backoff
    return this.#connect(undefined);
  }

  /**
   * Opens the transport, connects the SDK's client in the server's era, subscribes again and lists the
   * catalogs. With `prior` (a verdict of an earlier connection of this server) nothing is probed: a modern
   * verdict connects with no round trip at all, a legacy one with `initialize`. Without, the client
   * negotiates as `protocol` says: `auto` probes with `server/discover` and falls back to `initialize`.
   */
  async #connect(prior: Verdict | undefined): Promise<{ error?: WireError; ready?: Ready; heard: boolean }> {
    const spec = this.spec;
    let link: Link | undefined;
    try {
      // Nothing is spawned or fetched yet: a close that came meanwhile leaves nothing to tear down.
      if (this.#closing) return { error: wireError("POOL_CLOSED", "closing"), heard: false };
      // Legacy era: what the server sends on a call's stream is read for its requests, when it may send any we answer.
      const scan = (spec.clientCapabilities ?? []).length > 0 ? { active: () => link?.modern === false, declares: (method: string) => this.asks.declares(method) } : undefined;
      const streams = spec.transport === "http" ? new CallStreams(this.#requests.callStreamHost(() => link), scan) : undefined;
      const headers = spec.dynamicHeaders ? await this.#headers() : spec.headers;
      if (this.#closing) return { error: wireError("POOL_CLOSED", "closing"), heard: false };
      const transport = createTransport(spec.dynamicHeaders ? { ...spec, headers } : spec, {
        onpid: (pid, startTime) => this.#main?.pid(pid, startTime).catch(ignore),
        onheard: () => link && (link.heard = true),
        onoversize: () => this.#oversize(link),
        adopt: () => {
          const early = this.#early;
          this.#early = undefined;
          return early;
        },
      }, streams);
      const client = new PoolClient(CLIENT_INFO, {
        capabilities: capabilitiesOf(spec.clientCapabilities ?? []),
        jsonSchemaValidator: deferredValidator,
        versionNegotiation: { mode: negotiationOf(spec.protocol), probe: { timeoutMs: probeTimeoutMs(spec) } },
      });
      let lostResolve!: () => void;
      const lost = new Promise<void>((resolve) => (lostResolve = resolve));
      let supersede!: () => void;
      const superseded = new Promise<void>((resolve) => (supersede = resolve));
      const mine: Link = { client, modern: false, envelope: undefined, listening: undefined, heard: false, transport, closed: false, lost, superseded, supersede, streams, stale: new Set(), after401: this.#after401, unauthorized: this.#unauthorized };
      link = mine;
      client.onclose = () => {
        mine.closed = true;
        lostResolve();
      };
      // Most transport errors surface as closes or failed requests. Legacy SSE is the exception: its
      // stream is the only way answers come back, and when it breaks the SDK neither closes nor
      // rejects what is pending, so a broken stream is a lost connection.
      client.onerror = (error) => {
        if (spec.transport === "sse" && error instanceof SseError) this.lose(mine, wireError("CONNECTION_LOST", `SSE stream broke: ${error.message}`));
      };
      this.#listenOn(mine);
      this.asks.register(client, (requestId) => this.#requests.originOf(mine, requestId));
      this.#link = mine;
      try {
        await client.connect(transport, { timeout: spec.connectTimeoutMs, ...(prior ? { prior } : {}) });
      } catch (error) {
        // A legacy stdio server that exits on the unknown `server/discover` (or answers it with garbage)
        // leaves the SDK no way to fall back on that process: the next attempt goes straight to initialize.
        // Not at once: a server that cannot start at all fails the same way, and costs one spawn per
        // attempt either way. If it died for another reason the verdict is wrong, and is dropped (#open).
        if (!prior && spec.protocol === "auto" && spec.transport === "stdio" && isNegotiationFailure(error)) this.#prior = { kind: "legacy" };
        throw error;
      }
      // Our requests' answers and progress go to the request path first; the rest to the SDK, which connect() hooked in.
      const sdkOnMessage = transport.onmessage;
      transport.onmessage = (message, extra) => {
        if (!this.#requests.take(mine, message)) sdkOnMessage?.(message, extra);
      };
      mine.modern = client.getProtocolEra() === "modern";
      mine.envelope = mine.modern ? client.envelope() : undefined;
      if (this.#closing) return { error: wireError("POOL_CLOSED", "closing"), heard: true };
      // Subscribed (listening, in the 2026-07-28 era) before listing: a change between the two is not lost.
      // A stale modern verdict connects without a word: its first request is what fails.
      await this.#applyLogLevel(mine);
      await this.subscriptions.restore(mine);
      const catalogs = await this.listings.listAll(mine);
      const discover = client.getDiscoverResult();
      const verdict: Verdict = mine.modern && discover ? { kind: "modern", discover } : { kind: "legacy" };
      if (spec.protocol !== "legacy") this.#prior = verdict;
      const server: ServerInfo = {
        protocolVersion: client.getNegotiatedProtocolVersion(),
        // Required in the handshake; a 2026-07-28 server may leave itself unnamed.
        serverInfo: client.getServerVersion() ?? { name: spec.server, version: "" },
        capabilities: client.getServerCapabilities() ?? {},
      };
      const instructions = client.getInstructions();
      if (instructions !== undefined) server.instructions = instructions;
      const pid = pidOf(transport);
      // The legacy era's Mcp-Session-Id over Streamable HTTP (the span attribute `mcp.session.id`).
      const sessionId = mine.modern ? undefined : (transport as { sessionId?: unknown }).sessionId;
      return { ready: { catalogs, server, verdict, ...(pid ? { pid } : {}), ...(typeof sessionId === "string" ? { sessionId } : {}) }, heard: true };
    } catch (error) {
      await closeLink(link);
      const as = prior ? ` (as a ${prior.kind === "modern" ? "2026-07-28" : "legacy"} server, as it was last found)` : "";
      // The status, when the SDK's message leaves it out (a 401 of expired credentials).
      const status = httpStatusOf(error);
      const http = typeof status === "number" && !messageOf(error).includes(String(status)) ? ` (HTTP ${status})` : "";
      const data = typeof status === "number" ? { data: { httpStatus: status } } : undefined;
      return { error: wireError("SERVER_UNAVAILABLE", `could not connect to ${describe(spec)}${as}: ${messageOf(error)}${http}`, data), heard: link?.heard ?? false };
    }
  }

  /**
   * What the server sends unasked. Legacy era: on the connection; 2026-07-28: on the
   * `subscriptions/listen` stream (subscriptions.ts), dispatched to the same handlers.
   */
  #listenOn(link: Link): void {
    const { client } = link;
    client.setNotificationHandler("notifications/tools/list_changed", () => this.listings.refresh(link, "tools"));
    client.setNotificationHandler("notifications/resources/list_changed", () => this.listings.refresh(link, "resources"));
    client.setNotificationHandler("notifications/prompts/list_changed", () => this.listings.refresh(link, "prompts"));
    client.setNotificationHandler("notifications/resources/updated", (n) => this.subscriptions.onUpdated(n.params.uri));
    client.setNotificationHandler("notifications/message", (n) => {
      this.#main?.log(n.params.level, n.params.logger, n.params.data).catch(ignore);
    });
  }

  /** The headers for this connect, from the main thread's functions; what they throw fails the attempt. */
  async #headers(): Promise<Record<string, string>> {
    const main = this.#main;
    if (!main) throw new Error("the pool is gone");
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the headers function did not answer within ${this.spec.connectTimeoutMs} ms`)), this.spec.connectTimeoutMs);
    });
    try {
      const outcome = await Promise.race([main.headers(), bound]);
      if (!outcome.ok) throw new Error(outcome.error.message);
      return outcome.value;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * A request on `link` got HTTP 401: reconnect with headers asked again, unless that was just done (see
   * Link.after401). The requests that get a 401 while the link closes (they went out together) are sent
   * again too; a link closing for another reason is reopened with headers asked again anyway.
   */
  readonly #unauthorized = (link: Link): boolean => {
    if (link.after401 || this.#closing) return false;
    if (link.reason || link.closed) return true;
    this.#after401 = true;
    link.reason = wireError("CONNECTION_LOST", "HTTP 401 from server: reconnecting with fresh headers");
    link.supersede();
    return true;
  };

  /**
   * A link a 401 retired: it takes no new requests (its `reason` is set), but the requests the server took on
   * it before the token expired are not lost with it: they finish there (answer, deadline, cancel), and
   * then it closes. If it closes before (the server went), they are lost with it as usual.
   */
  #retire(link: Link): void {
    this.#retired.add(link);
    void link.lost.then(() => {
      this.#retired.delete(link);
      this.#requests.loseAll(link);
    });
    void this.#requests.drained(link).then(() => closeLink(link));
  }

  #oversize(link: Link | undefined): void {
    if (!link || link.closed) return;
    // The request that asked got RESULT_TOO_LARGE already when its id was known; reopen either way.
    this.lose(link, wireError("RESULT_TOO_LARGE", `a message from the server exceeded ${this.spec.maxMessageBytes} bytes`));
  }

  #startKeepalive(link: Link): void {
    const { intervalMs, timeoutMs, failures } = this.spec.keepalive;
    if (intervalMs <= 0) return;
    let missed = 0;
    let busy = false;
    this.#keepalive = setInterval(() => {
      if (busy || link.closed) return;
      busy = true;
      // The 2026-07-28 era has no ping. Its `server/discover` is as cheap, and required of every server.
      (link.modern ? link.client.discover({ timeout: timeoutMs }) : link.client.ping({ timeout: timeoutMs }))
        .then(() => (missed = 0))
        .catch(() => {
          if (++missed >= failures) this.lose(link, wireError("CONNECTION_LOST", `server missed ${missed} keepalive ${link.modern ? "discover requests" : "pings"}`));
        })
        .finally(() => (busy = false));
    }, intervalMs);
    this.#keepalive.unref();
  }

  #stopKeepalive(): void {
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }
}

/** A call on the MainControl proxy is never awaited, and its failure (the main thread gone) changes nothing here. */
function ignore(): void {}


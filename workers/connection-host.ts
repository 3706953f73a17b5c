/**
 * The connection host: one long-lived piscina task per MCP connection.
 *
 * It alone opens the transport, reopens it after the server dies (backoff with full jitter,
 * then slow probes), pings it to catch a hung server, and tears it down. The main thread talks
 * to it through comlink on the transferred port and hears back through `HostEvent` messages.
 */
import { threadId } from "node:worker_threads";
import type { MessagePort } from "node:worker_threads";
import { expose } from "comlink";
import {
  Client,
  INVALID_PARAMS,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  SseError,
  SSEClientTransport,
  specTypeSchemas,
  StreamableHTTPClientTransport,
  type CallToolResult,
  type JSONRPCMessage,
  type JsonSchemaValidator,
  type McpSubscription,
  type Progress,
  type StandardSchemaV1,
  type Tool,
  type Transport,
  type VersionNegotiationMode,
} from "@modelcontextprotocol/client";
import {
  installErrorTransfer,
  isCallBatch,
  isPing,
  NOT_SENT,
  PONG,
  RESULT_TOO_LARGE_RPC_CODE,
  wireError,
  type CallResult,
  type CallRequest,
  type ConnectionSpec,
  type ConnectionState,
  type HostApi,
  type HostEvent,
  type HostTask,
  type ServerInfo,
  type Outcome,
  type Verdict,
  type WireError,
} from "../src/common/protocol.js";
import { backoffDelay } from "../src/common/backoff.js";
import { checkCallResult } from "./call-result.js";
import { lowerThreadPriority } from "./priority.js";
import { ProcessGroupStdioTransport } from "./stdio-transport.js";
import { MessageTooLargeError, sizeLimitedFetch } from "./http-limit.js";
import { CallStreams, HttpCall, messageOf, RECONNECTION_OPTIONS, type CallStreamHost } from "./http-calls.js";
import { deferredValidator, ListingValidators } from "./validators.js";

installErrorTransfer();

const CLIENT_INFO = { name: "mcp-worker-pool", version: "0.1.0" };
/** A hostile server could page forever. */
const MAX_TOOL_PAGES = 1_000;
/** Unusable tools reported one by one per listing; the rest in one line. */
const MAX_SKIP_WARNINGS = 10;
/**
 * Our tools/call requests are numbered from here; the number is also the call's progress token. The SDK
 * numbers its own requests on a link (initialize, tools/list, pings) from 0, and would need a billion of
 * them to reach ours. Plain integers, because some servers refuse string ids they find unusual (the Ruby
 * SDK accepts only [A-Za-z0-9_-]) or take only integers; and below 2^31, for servers that parse ids as
 * 32-bit integers. A worker that gets that far starts again here, skipping numbers still in flight.
 */
const FIRST_WIRE_ID = 1_000_000_000;
const LAST_WIRE_ID = 2 ** 31 - 1;
/** One of our ids written as a string: ten digits, no sign, no leading zero. */
const WIRE_ID_TEXT = /^[1-9][0-9]{9}$/;
/** How long a graceful close waits for the HTTP server to acknowledge the session's end. */
const HTTP_TERMINATE_MS = 1_000;

/** A tools/call sent to the server and not answered yet. */
interface PendingCall {
  link: Link;
  /** What was asked, for the calls the SDK's client carries (see #viaSdk). */
  req: CallRequest;
  /** While the SDK's client carries the call through input rounds: its abort. */
  rounds: AbortController | undefined;
  /** The JSON-RPC id, also its progress token. */
  id: number;
  timer: NodeJS.Timeout;
  timeoutMs: number;
  /** On a Streamable HTTP link: its requests' abort and its stream's resumption (see CallStreams). */
  http: HttpCall | undefined;
  /** The caller asked for progress: only then is it forwarded. */
  progress: boolean;
  /** Progress notifications posted this tick (see #take). */
  burst: number;
  /** This tick's latest progress notification beyond the burst (its params), not posted yet. */
  latest: ProgressParams | undefined;
}

type ProgressParams = { progressToken?: unknown } & Progress;

/**
 * The SDK's client, with the one thing of its own the pool needs for the tools/call messages it sends
 * itself: the `_meta` envelope (protocol version, client info and capabilities) that every request of the
 * 2026-07-28 era carries. The SDK builds it for its own requests in a protected method.
 */
class PoolClient extends Client {
  /** This connection's envelope; `undefined` in the legacy era, whose requests carry none. */
  envelope(): Readonly<Record<string, unknown>> | undefined {
    return this._outboundMetaEnvelope();
  }
}

/** One open transport and the client on it; a new one per (re)open. */
interface Link {
  client: PoolClient;
  /** The 2026-07-28 era (stateless, `server/discover`): set once connected. */
  modern: boolean;
  /** The `_meta` envelope of its requests (modern era only). */
  envelope: Readonly<Record<string, unknown>> | undefined;
  /** Modern era: the `subscriptions/listen` stream that brings `list_changed`. */
  listening: McpSubscription | undefined;
  /** The server answered something on it (a message on stdio, an HTTP answer or era refusal): it is there and speaks. */
  heard: boolean;
  transport: Transport;
  /** Resolves when this link's transport has closed, for whatever reason. */
  lost: Promise<void>;
  closed: boolean;
  /** Why the pool closed it on purpose (hang, oversize); calls lost with it get this code. */
  reason?: WireError;
  /** Streamable HTTP: what its fetch knows of the calls it carries. */
  streams: CallStreams | undefined;
}

export default async function connectionHost(task: HostTask): Promise<void> {
  lowerThreadPriority(task.spec.nice);
  await new ConnectionHost(task.spec, task.port).run();
}

export class ConnectionHost implements HostApi {
  readonly #spec: ConnectionSpec;
  readonly #port: MessagePort;
  #state: ConnectionState = "connecting";
  #link: Link | undefined;
  #closing = false;
  #wake: (() => void) | undefined;
  #closed: Promise<void>;
  #markClosed!: () => void;
  /** Calls sent and not yet answered, by callId. */
  #calls = new Map<number, PendingCall>();
  /** callId of each pending call by its JSON-RPC id. */
  #wireIds = new Map<number, number>();
  #nextWireId = FIRST_WIRE_ID;
  #validators = new Map<string, JsonSchemaValidator<unknown> | null>();
  #tools: Tool[] = [];
  /** Tools whose inputSchema mirrors arguments into HTTP headers (`x-mcp-header`, 2026-07-28 over HTTP). */
  #headerTools = new Set<string>();
  /** Compiled inputSchemas of the current listing; a new listing starts afresh (see validators.ts). */
  #schemas = new ListingValidators();
  /** The era this server was last found to speak: the next connect tries it first (see #open). */
  #prior: Verdict | undefined;
  /** Attempts in a row that failed under #prior without a word from the server. */
  #unheard = 0;
  #keepalive: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #refreshAgain = false;
  /** The link whose server last said its tools changed (see #refreshTools). */
  #refreshFor: Link | undefined;
  /** Results of this tick, posted together at its end (see CallBatch). */
  #results: CallResult[] = [];
  #resultBytes = 0;
  /** Calls with progress to post at the end of this tick (see #take). */
  #progressDue: number[] = [];

  constructor(spec: ConnectionSpec, port: MessagePort) {
    this.#spec = spec;
    this.#port = port;
    this.#prior = spec.protocol === "legacy" ? undefined : spec.prior;
    this.#closed = new Promise((resolve) => (this.#markClosed = resolve));
    // Methods are exposed by name; bind them so comlink calls land on this instance.
    expose({ cancel: this.cancel.bind(this), close: this.close.bind(this) }, port as never);
    // Tool calls come as plain messages (the hot path, see CallBatch); comlink ignores them.
    port.on("message", (data: unknown) => {
      if (isCallBatch(data)) for (const req of data.calls) this.#onCall(req);
      else if (isPing(data)) port.postMessage(PONG);
    });
  }

  /**
   * Sends one tools/call. Not through the SDK's `request()`: per call it allocates a promise, an abort
   * listener, a timer and handler closures, and zod-parses the result twice; on the worker's hot path
   * that was most of its CPU and garbage (see docs/performance.md, "Where the time goes"). The call is ours from
   * here to its answer: our id, our deadline, our cancellation (`notifications/cancelled`, as the SDK
   * sends it), settled by its answer (`#take`), `cancel`, its timer or the loss of its link, whichever comes first.
   */
  #onCall(req: CallRequest): void {
    const link = this.#link;
    if (this.#closing) return this.#reply(req.callId, fail("POOL_CLOSED", "connection is closing"));
    // A link being closed on purpose (hang, oversize) takes no new calls while its transport shuts down.
    if (this.#state !== "ready" || !link || link.closed || link.reason) {
      // Never sent: the main thread may route it again whatever the tool (see NOT_SENT).
      const code = this.#state === "failed" ? "SERVER_UNAVAILABLE" : "CONNECTION_LOST";
      return this.#reply(req.callId, { ok: false, error: wireError(code, `connection is ${this.#state}`, { data: NOT_SENT }) });
    }
    const invalid = this.#validate(req.name, req.args);
    if (invalid) return this.#reply(req.callId, fail("INVALID_ARGUMENTS", `arguments of ${req.name} do not match its inputSchema: ${invalid}`));

    const { callId, timeoutMs } = req;
    const id = this.#wireId();
    const timer = setTimeout(this.#expire, timeoutMs, callId);
    const http = link.streams ? new HttpCall(id) : undefined;
    this.#calls.set(callId, { link, req, rounds: undefined, id, timer, timeoutMs, http, progress: req.progress, burst: 0, latest: undefined });
    // A 2026-07-28 tool that mirrors arguments into HTTP headers (SEP-2243 `x-mcp-header`): the SDK writes them.
    if (http && link.modern && this.#headerTools.has(req.name)) return this.#viaSdk(callId, this.#calls.get(callId)!);
    this.#wireIds.set(id, callId);
    // The 2026-07-28 era: the link's envelope goes in every request's _meta.
    const meta = req.progress ? { ...link.envelope, progressToken: id } : link.envelope;
    const params = meta ? { name: req.name, arguments: req.args, _meta: meta } : { name: req.name, arguments: req.args };
    // Keys in this order: CallStreams reads the id from the start of the serialized message.
    link.transport.send({ jsonrpc: "2.0", id, method: "tools/call", params }, http?.sendOptions).catch((error: unknown) => {
      if (this.#calls.get(callId)?.link === link) this.#settle(callId, { ok: false, error: this.#classify(error, link) });
    });
  }

  /** Ends a pending call with `outcome`; later answers for it are dropped. */
  #settle(callId: number, outcome: Outcome<CallToolResult>): PendingCall | undefined {
    const call = this.#calls.get(callId);
    if (!call) return undefined;
    this.#calls.delete(callId);
    this.#wireIds.delete(call.id);
    clearTimeout(call.timer);
    call.rounds?.abort();
    if (call.http) call.link.streams!.callEnded(call.http, outcome.ok);
    // Its progress goes out ahead of its result.
    if (call.latest) this.#postProgress(callId, call.latest);
    this.#reply(callId, outcome);
    return call;
  }

  /**
   * Ends a pending call on our side and tells the server to stop working on it: `notifications/cancelled`,
   * or in the 2026-07-28 era over Streamable HTTP by closing the call's stream, which #settle did (its
   * requests are aborted with it). A call in input rounds is the SDK's to cancel (#settle aborted them).
   */
  #abandon(callId: number, error: WireError): void {
    const call = this.#settle(callId, { ok: false, error });
    if (!call || call.link.closed || call.rounds || (call.link.modern && call.http)) return;
    const params = { requestId: call.id, reason: error.message, ...(call.link.envelope ? { _meta: call.link.envelope } : {}) };
    const notice = { jsonrpc: "2.0" as const, method: "notifications/cancelled", params };
    call.link.transport.send(notice).catch(() => {}); // a link that cannot take it is being lost anyway
  }

  readonly #expire = (callId: number): void => {
    const call = this.#calls.get(callId);
    if (call) this.#abandon(callId, wireError("TIMEOUT", `tool call timed out after ${call.timeoutMs} ms`));
  };

  /**
   * Sees every message of `link` before the SDK does and keeps what is ours: answers to our calls and
   * their progress. Returns false for what the SDK should handle. Progress for a call that did not ask
   * for it is dropped (a server may send it to the request id anyway). For one that did, the first
   * PROGRESS_BURST notifications of a tick are posted as they come; of the rest, only the latest, at the
   * tick's end or ahead of the call's result: a flood costs the main thread a bounded number of messages
   * per call and tick, not one per notification, and the caller always hears the latest.
   */
  #take(link: Link, message: JSONRPCMessage): boolean {
    if ("method" in message) {
      if (message.method !== "notifications/progress" || "id" in message) return false;
      const params = (message.params ?? {}) as ProgressParams;
      const callId = this.#callIdOf(params.progressToken);
      if (callId === undefined) return false;
      const call = this.#calls.get(callId);
      if (call?.link !== link || !call.progress) return true;
      if (call.burst === 0) {
        // The tick's end resets the burst (and posts what was held back).
        if (this.#progressDue.length === 0) process.nextTick(this.#flushProgress);
        this.#progressDue.push(callId);
      }
      if (call.burst < PROGRESS_BURST) {
        call.burst++;
        this.#postProgress(callId, params);
      } else {
        call.latest = params;
      }
      return true;
    }
    const callId = this.#callIdOf((message as { id?: unknown }).id);
    if (callId === undefined) return false;
    // An answer to a call already settled (timed out, cancelled) is dropped.
    const call = this.#calls.get(callId);
    if (call?.link !== link) return true;
    if (call.http) call.http.answered = true;
    const answer = message as { result?: unknown; error?: unknown };
    if ("result" in answer) {
      const checked = checkCallResult(answer.result, link.modern);
      if (checked.ok === "input_required") this.#inputRequired(callId, call, checked.asks);
      else this.#settle(callId, checked.ok ? { ok: true, value: checked.value } : fail("PROTOCOL_ERROR", checked.message));
    } else {
      this.#settle(callId, { ok: false, error: rpcError(answer.error) });
    }
    return true;
  }

  /**
   * A 2026-07-28 server answered the call with `input_required`. With requests for input (elicitation,
   * sampling, roots) the call cannot go on: the pool has nobody to ask yet, and the SDK's client would only
   * find no handler for them. With only `requestState` (the server wants the call sent again with it), the
   * SDK's client carries it through its rounds.
   */
  #inputRequired(callId: number, call: PendingCall, asks: boolean): void {
    if (!asks) return this.#viaSdk(callId, call);
    this.#settle(callId, fail("PROTOCOL_ERROR", `${call.req.name} asks the client for input (elicitation, sampling or roots), which this pool does not answer`));
  }

  /**
   * Hands a call to the SDK's `callTool()`, for what the lean path does not do: a server's `input_required`
   * rounds (the SDK answers them through its handlers and retries the call, up to its round limit; there is
   * no way to hand it a result we hold, so the call starts over), and the `Mcp-Param-*` headers of a tool
   * that declares them. Under the call's own deadline and cancellation; its progress as the lean path posts it.
   */
  #viaSdk(callId: number, call: PendingCall): void {
    this.#wireIds.delete(call.id);
    const rounds = (call.rounds = new AbortController());
    const tool = this.#tools.find((t) => t.name === call.req.name);
    const onprogress = call.progress ? (progress: Progress) => this.#calls.get(callId) === call && this.#postProgress(callId, progress) : undefined;
    call.link.client
      .callTool({ name: call.req.name, arguments: call.req.args }, { signal: rounds.signal, timeout: call.timeoutMs, onprogress, ...(tool ? { toolDefinition: tool } : {}) })
      .then(
        (result) => {
          if (this.#calls.get(callId) !== call) return;
          const checked = checkCallResult(result, true);
          this.#settle(callId, checked.ok === true ? { ok: true, value: checked.value } : fail("PROTOCOL_ERROR", checked.ok === false ? checked.message : "server asked for input again after the client's last round"));
        },
        (error: unknown) => {
          if (this.#calls.get(callId) !== call) return;
          this.#settle(callId, { ok: false, error: this.#sdkError(error, call.link) });
        },
      );
  }

  /** Why a call the SDK carried failed. */
  #sdkError(error: unknown, link: Link): WireError {
    if (link.closed || link.reason) return link.reason ?? wireError("CONNECTION_LOST", `server connection lost: ${messageOf(error)}`);
    if (error instanceof ProtocolError) return rpcError({ code: error.code, message: error.message, data: error.data });
    if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) return wireError("TIMEOUT", `tool call timed out: ${error.message}`);
    const status = httpStatusOf(error);
    if (status !== null) return this.#classify(error, link);
    return wireError("PROTOCOL_ERROR", messageOf(error));
  }

  readonly #flushProgress = (): void => {
    const due = this.#progressDue;
    this.#progressDue = [];
    for (const callId of due) {
      const call = this.#calls.get(callId);
      if (!call) continue;
      if (call.latest) this.#postProgress(callId, call.latest);
      call.latest = undefined;
      call.burst = 0;
    }
  };

  #postProgress(callId: number, params: ProgressParams): void {
    const { progressToken: _, ...progress } = params;
    this.#post({ ev: "progress", callId, progress });
  }

  #wireId(): number {
    let id = this.#nextWireId;
    while (this.#wireIds.has(id)) id = id >= LAST_WIRE_ID ? FIRST_WIRE_ID : id + 1;
    this.#nextWireId = id >= LAST_WIRE_ID ? FIRST_WIRE_ID : id + 1;
    return id;
  }

  /**
   * The callId behind one of our JSON-RPC ids or progress tokens. Any number in our range is ours: an
   * answer to a call already settled (timed out, cancelled) gets `-1`, to be dropped, not left to the SDK.
   * A server that echoes the id as a string ("1000000007") is understood too, as the SDK's own client
   * understands it (it matches responses and progress by `Number(id)`).
   */
  #callIdOf(id: unknown): number | undefined {
    const n = typeof id === "number" ? id : typeof id === "string" && WIRE_ID_TEXT.test(id) ? Number(id) : Number.NaN;
    if (!(n >= FIRST_WIRE_ID && n <= LAST_WIRE_ID)) return undefined;
    return this.#wireIds.get(n) ?? -1;
  }

  /**
   * Results wait for the end of this tick, then go together (a call's progress still due is posted
   * ahead of its result, in #settle). A batch stays under BATCH_BYTES: with 10 KB results at 16 in
   * flight, unbounded batches cost the main thread more per call (13–20 µs against 10–14 µs, three
   * alternating runs). Large messages are not the reason: V8 deserializes even 1.6 MB batches into the
   * young generation.
   */
  #reply(callId: number, outcome: Outcome<CallToolResult>): void {
    const bytes = approxBytes(outcome);
    if (this.#results.length > 0 && this.#resultBytes + bytes > BATCH_BYTES) this.#flushResults();
    if (this.#results.length === 0) process.nextTick(this.#flushResults);
    this.#results.push({ callId, outcome });
    this.#resultBytes += bytes;
  }

  readonly #flushResults = (): void => {
    const results = this.#results;
    if (results.length === 0) return;
    this.#results = [];
    this.#resultBytes = 0;
    try {
      this.#post({ ev: "results", results });
    } catch {
      // One result cannot be cloned: send them one by one, so that only its call fails.
      for (const r of results) {
        try {
          this.#post({ ev: "results", results: [r] });
        } catch (error) {
          this.#post({ ev: "results", results: [{ callId: r.callId, outcome: fail("PROTOCOL_ERROR", `unserializable result: ${messageOf(error)}`) }] });
        }
      }
    }
  };

  #post(event: HostEvent): void {
    this.#port.postMessage(event);
  }

  #setState(state: ConnectionState, failedAttempts = 0, error?: WireError): void {
    this.#state = state;
    this.#post(error ? { ev: "state", state, failedAttempts, error, threadId } : { ev: "state", state, failedAttempts, threadId });
  }

  async run(): Promise<void> {
    const { reconnect } = this.#spec;
    let failures = 0;
    this.#setState("connecting");
    while (!this.#closing) {
      const error = await this.#open();
      if (this.#closing) break;
      if (!error) {
        failures = 0;
        this.#setState("ready");
        this.#startKeepalive();
        const link = this.#link!;
        await link.lost;
        this.#stopKeepalive();
        if (this.#closing) break;
        // The loss goes out before the calls lost with it, so the main thread stops routing here first.
        this.#setState("reconnecting", 0, link.reason ?? wireError("CONNECTION_LOST", "server connection lost"));
        this.#loseCalls(link);
        continue; // the first reopen after a loss is immediate
      }
      failures++;
      if (failures > reconnect.maxAttempts) {
        this.#setState("failed", failures, error);
        await this.#sleep(reconnect.probeIntervalMs);
      } else {
        this.#setState("reconnecting", failures, error);
        await this.#sleep(backoffDelay(failures, reconnect.initialDelayMs, reconnect.maxDelayMs));
      }
    }
    this.#stopKeepalive();
    await this.#link?.client.close().catch(() => {});
    await this.#closeLink(this.#link);
    this.#setState("closed");
    this.#markClosed();
    // Let comlink post close()'s reply before the port goes.
    await new Promise((resolve) => setImmediate(resolve));
    this.#port.close();
  }

  /**
   * One attempt to open the connection: in the era the server was last found to speak, if that is known,
   * else as `protocol` says (see #connect). A known era that no longer holds (the server was upgraded or
   * downgraded in place) is forgotten and the server probed again, in the same attempt. Returns the
   * error, or nothing.
   */
  async #open(): Promise<WireError | undefined> {
    const prior = this.#prior;
    const { error, heard } = await this.#connect(prior);
    if (!error || !prior || this.#closing) {
      this.#unheard = 0;
      return error;
    }
    // A server that answered, but not as its verdict said, changed era in place: probe it now. One that
    // said nothing is most likely down, which tells nothing of its era: the verdict stands for the next
    // attempts, but not for ever, since a server may also exit, silent, on a request of the wrong era.
    if (!heard && ++this.#unheard < UNHEARD_BEFORE_PROBE) return error;
    this.#unheard = 0;
    this.#prior = undefined;
    if (!heard) return error; // the next attempt probes, after its backoff
    return (await this.#connect(undefined)).error;
  }

  /**
   * Opens the transport, connects the SDK's client in the server's era and lists the tools. With `prior`
   * (a verdict of an earlier connection of this server) nothing is probed: a modern verdict connects
   * with no round trip at all, a legacy one with `initialize`. Without, the client negotiates as
   * `protocol` says: `auto` probes with `server/discover` and falls back to `initialize`.
   */
  async #connect(prior: Verdict | undefined): Promise<{ error: WireError | undefined; heard: boolean }> {
    const spec = this.#spec;
    let link: Link | undefined;
    try {
      // Nothing is spawned or fetched yet: a close that came meanwhile leaves nothing to tear down.
      if (this.#closing) return { error: wireError("POOL_CLOSED", "closing"), heard: false };
      const streams = spec.transport === "http" ? new CallStreams(this.#callStreamHost(() => link)) : undefined;
      const transport = this.#createTransport((id) => this.#oversize(link, id), () => link && (link.heard = true), streams);
      const client = new PoolClient(CLIENT_INFO, {
        capabilities: {},
        jsonSchemaValidator: deferredValidator,
        versionNegotiation: { mode: negotiationOf(spec.protocol), probe: { timeoutMs: Math.max(1, Math.floor(spec.connectTimeoutMs / 2)) } },
      });
      let lostResolve!: () => void;
      link = { client, modern: false, envelope: undefined, listening: undefined, heard: false, transport, closed: false, lost: new Promise<void>((r) => (lostResolve = r)), streams };
      const mine = link;
      client.onclose = () => {
        mine.closed = true;
        lostResolve();
      };
      // Most transport errors surface as closes or failed requests. Legacy SSE is the exception: its
      // stream is the only way answers come back, and when it breaks the SDK neither closes nor
      // rejects what is pending, so a broken stream is a lost connection.
      client.onerror = (error) => {
        if (spec.transport === "sse" && error instanceof SseError) this.#lose(mine, wireError("CONNECTION_LOST", `SSE stream broke: ${error.message}`));
      };
      // Legacy era: sent on the connection; 2026-07-28: on the subscriptions/listen stream (#listen).
      client.setNotificationHandler("notifications/tools/list_changed", () => this.#refreshTools(mine));
      this.#link = link;
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
      // Our calls' answers and progress go to #take first; the rest to the SDK, which connect() hooked in.
      const sdkOnMessage = transport.onmessage;
      transport.onmessage = (message, extra) => {
        if (!this.#take(mine, message)) sdkOnMessage?.(message, extra);
      };
      link.modern = client.getProtocolEra() === "modern";
      link.envelope = link.modern ? client.envelope() : undefined;
      if (this.#closing) return { error: wireError("POOL_CLOSED", "closing"), heard: true };
      // A stale modern verdict connects without a word: its first request is what fails.
      this.#setTools(await this.#listTools(client));
      const discover = client.getDiscoverResult();
      const verdict: Verdict = link.modern && discover ? { kind: "modern", discover } : { kind: "legacy" };
      if (spec.protocol !== "legacy") this.#prior = verdict;
      if (link.modern) this.#listen(link);
      const server: ServerInfo = {
        protocolVersion: client.getNegotiatedProtocolVersion(),
        // Required in the handshake; a 2026-07-28 server may leave itself unnamed.
        serverInfo: client.getServerVersion() ?? { name: spec.server, version: "" },
        capabilities: client.getServerCapabilities() ?? {},
      };
      const instructions = client.getInstructions();
      if (instructions !== undefined) server.instructions = instructions;
      const pid = this.#pidOf(transport);
      this.#post({ ev: "ready", tools: this.#tools, threadId, server, verdict, ...(pid ? { pid } : {}) });
      return { error: undefined, heard: true };
    } catch (error) {
      await this.#closeLink(link);
      const as = prior ? ` (as a ${prior.kind === "modern" ? "2026-07-28" : "legacy"} server, as it was last found)` : "";
      return { error: wireError("SERVER_UNAVAILABLE", `could not connect to ${describe(spec)}${as}: ${messageOf(error)}`), heard: link?.heard ?? false };
    }
  }

  /**
   * 2026-07-28: change notifications come only to those who listen for them (`subscriptions/listen`).
   * While the link lives, a stream that ends (the server dropped it, or ended it on its way down: a
   * stateless link outlives a server restart) is listened to again, and the tools listed again, since
   * what changed meanwhile is not known. A stream that ends soon after it opened, or a listen that fails,
   * waits longer each time, up to the slow probe interval: never a loop.
   */
  #listen(link: Link, attempt = 0): void {
    if (link.closed || link !== this.#link || !link.client.getServerCapabilities()?.tools?.listChanged) return;
    const again = (next: number) => {
      if (link.closed || link !== this.#link) return;
      const delay = next === 0 ? LISTEN_AGAIN_MS : Math.min(this.#spec.reconnect.probeIntervalMs, backoffDelay(next, LISTEN_AGAIN_MS, LISTEN_MAX_DELAY_MS));
      setTimeout(() => this.#listen(link, next), delay).unref();
    };
    link.client
      .listen({ toolsListChanged: true }, { timeout: this.#spec.connectTimeoutMs })
      .then(async (subscription) => {
        if (link.closed || link !== this.#link) return void subscription.close().catch(() => {});
        link.listening = subscription;
        const opened = Date.now();
        const why = await subscription.closed;
        if (why === "local" || link.closed || link !== this.#link) return;
        this.#refreshTools(link);
        again(Date.now() - opened >= LISTEN_STABLE_MS ? 0 : attempt + 1);
      })
      .catch(() => again(attempt + 1));
  }


  /** A graceful close tells a Streamable HTTP server to drop our session (DELETE), briefly. */
  async #endHttpSession(link: Link | undefined): Promise<void> {
    const transport = link?.transport;
    if (!link || link.closed || !(transport instanceof StreamableHTTPClientTransport) || !transport.sessionId) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      transport.terminateSession().catch(() => {}),
      new Promise((resolve) => (timer = setTimeout(resolve, HTTP_TERMINATE_MS))),
    ]);
    clearTimeout(timer);
  }

  #pidOf(transport: Transport): number | undefined {
    return transport instanceof ProcessGroupStdioTransport ? transport.pid : undefined;
  }

  #createTransport(onoversize: (id: string | number | undefined) => void, onheard: () => void, streams: CallStreams | undefined): Transport {
    const spec = this.#spec;
    if (spec.transport === "stdio") {
      return new ProcessGroupStdioTransport({
        command: spec.command!,
        args: spec.args,
        env: spec.env,
        cwd: spec.cwd,
        stderr: spec.stderr,
        maxMessageBytes: spec.maxMessageBytes,
        nice: spec.nice,
        onpid: (pid, startTime) => this.#post({ ev: "pid", pid, startTime }),
        onheard,
        onoversize,
        onheaplimit: outOfHeap,
      });
    }
    const requestInit = { headers: spec.headers };
    const url = new URL(spec.url!);
    // The server speaking: an answer, or the statuses a server of the other era answers with. Not a 5xx (a
    // proxy in front of a server that is down), nor what an ingress or gateway says of the request itself
    // (401, 403, 408, 429), which tell nothing of the server's era.
    const limited = sizeLimitedFetch(spec.maxMessageBytes, () => onoversize(undefined), (status) => {
      if ((status >= 200 && status < 300) || ERA_STATUSES.has(status)) onheard();
    });
    if (spec.transport === "sse") return new SSEClientTransport(url, { requestInit, fetch: limited });
    // The SDK resumes a stream the server ended after an event id (SEP-1699), a few times; CallStreams
    // ties each request to its call and tells the host what the SDK cannot settle.
    return new StreamableHTTPClientTransport(url, { requestInit, fetch: streams!.over(limited), reconnectionOptions: RECONNECTION_OPTIONS });
  }

  /** What the fetch of a Streamable HTTP link asks about its calls, and reports. */
  #callStreamHost(linkOf: () => Link | undefined): CallStreamHost {
    return {
      callOf: (wireId) => {
        const callId = this.#wireIds.get(wireId);
        const call = callId === undefined ? undefined : this.#calls.get(callId);
        return call && call.link === linkOf() ? call.http : undefined;
      },
      callAt: (lastEventId) => {
        const link = linkOf();
        for (const call of this.#calls.values()) if (call.link === link && call.http?.lastEventId === lastEventId) return call.http;
        return undefined;
      },
      // What the SDK would leave waiting: a stream ended without the answer, a resumption that failed.
      fail: (http, why) => {
        const callId = this.#wireIds.get(http.wireId);
        if (callId !== undefined && this.#calls.get(callId)?.http === http) this.#abandon(callId, wireError("CONNECTION_LOST", why));
      },
      broken: (error) => {
        const link = linkOf();
        if (link) this.#lose(link, wireError("CONNECTION_LOST", `the server's answer broke off: ${messageOf(error)}`));
      },
      // Reopen with a new initialize; the calls it fails are retried under the usual rules.
      sessionGone: (why) => {
        const link = linkOf();
        if (link) this.#lose(link, wireError("CONNECTION_LOST", `the server no longer knows our session (${why})`));
      },
    };
  }

  /**
   * All pages of tools/list. Each tool is checked on its own: the SDK's listTools() parses the whole page
   * at once (and compiles every outputSchema), so one unusable tool (an inputSchema whose type is not
   * "object", a missing name) made the whole server unusable. Such a tool is skipped with a warning
   * (a "log" event on the main thread); the others are kept.
   */
  async #listTools(client: Client): Promise<Tool[]> {
    const tools: Tool[] = [];
    let skipped = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_TOOL_PAGES; page++) {
      const res = await client.request({ method: "tools/list", params: cursor === undefined ? {} : { cursor } }, TOOLS_PAGE, { timeout: this.#spec.connectTimeoutMs });
      for (const raw of res.tools) {
        const parsed = TOOL.validate(raw);
        if (parsed.issues === undefined) tools.push(parsed.value as Tool);
        else if (++skipped <= MAX_SKIP_WARNINGS) this.#post({ ev: "log", level: "warning", data: `tool ${toolLabel(raw)} skipped: ${issuesOf(parsed.issues)}` });
      }
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    // A hostile list of thousands of unusable tools costs the main thread one more event, not thousands.
    if (skipped > MAX_SKIP_WARNINGS) this.#post({ ev: "log", level: "warning", data: `${skipped - MAX_SKIP_WARNINGS} more unusable tools skipped` });
    return tools;
  }

  #setTools(tools: Tool[]): void {
    this.#tools = tools;
    this.#headerTools = new Set(tools.filter((t) => declaresHeader(t.inputSchema)).map((t) => t.name));
    this.#validators.clear();
    this.#schemas = new ListingValidators();
  }

  /** After list_changed: list again; notifications that arrive meanwhile cause one more listing. */
  #refreshTools(link: Link): void {
    this.#refreshFor = link;
    if (this.#refreshing) {
      this.#refreshAgain = true;
      return;
    }
    this.#refreshing = (async () => {
      do {
        this.#refreshAgain = false;
        // The link of the latest notification: one that came on a new link while a listing on the one
        // before it was failing is not lost with it.
        const target = this.#refreshFor;
        if (!target || target !== this.#link || target.closed) continue;
        try {
          const tools = await this.#listTools(target.client);
          if (target !== this.#link || target.closed) continue;
          this.#setTools(tools);
          this.#post({ ev: "tools", tools });
        } catch {
          // a dead link is reopened, and reopening lists the tools anyway; a live one lists at its next notification
        }
      } while (this.#refreshAgain);
    })().finally(() => (this.#refreshing = undefined));
  }

  #oversize(link: Link | undefined, id: string | number | undefined): void {
    if (!link || link.closed) return;
    // The call that asked got RESULT_TOO_LARGE already when its id was known; reopen either way.
    this.#lose(link, wireError("RESULT_TOO_LARGE", `a message from the server exceeded ${this.#spec.maxMessageBytes} bytes`));
  }

  /** Closes a link on purpose (hang, oversize, HTTP session gone); `run()` then reopens. */
  #lose(link: Link, reason: WireError): void {
    if (link.closed || link.reason) return;
    link.reason = reason;
    void this.#closeLink(link);
  }

  async #closeLink(link: Link | undefined): Promise<void> {
    if (!link) return;
    try {
      await link.transport.close();
    } catch {
      // already gone
    }
    link.closed = true;
  }

  #startKeepalive(): void {
    const { intervalMs, timeoutMs, failures } = this.#spec.keepalive;
    if (intervalMs <= 0) return;
    const link = this.#link!;
    let missed = 0;
    let busy = false;
    this.#keepalive = setInterval(() => {
      if (busy || link.closed) return;
      busy = true;
      // The 2026-07-28 era has no ping. Its `server/discover` is as cheap, and required of every server.
      (link.modern ? link.client.discover({ timeout: timeoutMs }) : link.client.ping({ timeout: timeoutMs }))
        .then(() => (missed = 0))
        .catch(() => {
          if (++missed >= failures) this.#lose(link, wireError("CONNECTION_LOST", `server missed ${missed} keepalive ${link.modern ? "discover requests" : "pings"}`));
        })
        .finally(() => (busy = false));
    }, intervalMs);
    this.#keepalive.unref();
  }

  #stopKeepalive(): void {
    clearInterval(this.#keepalive);
    this.#keepalive = undefined;
  }

  #validate(name: string, args: Record<string, unknown>): string | undefined {
    let validator = this.#validators.get(name);
    if (validator === undefined) {
      const tool = this.#tools.find((t) => t.name === name);
      validator = null;
      if (tool?.inputSchema) {
        try {
          validator = this.#schemas.compile(tool.inputSchema as never);
        } catch {
          validator = null; // a schema ajv cannot compile is the server's problem, not a reason to refuse calls
        }
      }
      this.#validators.set(name, validator);
    }
    if (!validator) return undefined;
    const result = validator(args);
    return result.valid ? undefined : result.errorMessage;
  }

  /** The link is gone: its calls end with the reason it was closed for, or as lost. */
  #loseCalls(link: Link): void {
    const error = link.reason ?? wireError("CONNECTION_LOST", "server connection lost while the call was in flight");
    for (const [callId, call] of this.#calls) if (call.link === link) this.#settle(callId, { ok: false, error });
  }

  /** Why sending a call failed. */
  #classify(error: unknown, link: Link): WireError {
    const status = httpStatusOf(error);
    if (status !== null) {
      // A link closed meanwhile loses the call, as #loseCalls would. On Streamable HTTP that is how a
      // "session gone" answer (a 404, or a 400 saying so) ends here: CallStreams alone judges the answer,
      // and closed the link for it (one initialize for everyone who noticed).
      if (link.reason || link.closed) return link.reason ?? wireError("CONNECTION_LOST", `server connection lost: ${messageOf(error)}`);
      // A 404 no CallStreams took for a lost session (legacy SSE's POST endpoint, a server without
      // sessions): what we were talking to is gone. Reopen.
      if (status === 404 || status === undefined || status >= 500) {
        this.#lose(link, wireError("CONNECTION_LOST", `HTTP ${status ?? "error"}: ${messageOf(error)}`));
        return wireError("CONNECTION_LOST", `HTTP ${status ?? "error"} from server: ${messageOf(error)}`);
      }
      return wireError("SERVER_UNAVAILABLE", `HTTP ${status} from server: ${messageOf(error)}`);
    }
    if (error instanceof MessageTooLargeError) return wireError("RESULT_TOO_LARGE", error.message);
    if (link.closed) return link.reason ?? wireError("CONNECTION_LOST", `server connection lost: ${messageOf(error)}`);
    if (error instanceof TypeError && /fetch failed|network|ECONN|socket/i.test(`${error.message} ${messageOf(error.cause)}`)) {
      this.#lose(link, wireError("CONNECTION_LOST", `server unreachable: ${messageOf(error.cause ?? error)}`));
      return wireError("CONNECTION_LOST", `server unreachable: ${messageOf(error.cause ?? error)}`);
    }
    return wireError("PROTOCOL_ERROR", messageOf(error));
  }

  cancel(callId: number, reason: string): void {
    this.#abandon(callId, wireError("ABORTED", reason));
  }

  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.#state = "closing";
      this.#wake?.();
      for (const callId of [...this.#calls.keys()]) this.#abandon(callId, wireError("ABORTED", "pool closing"));
      // Interrupts an attempt in progress; run() does the rest of the teardown.
      const link = this.#link;
      if (link) void this.#endHttpSession(link).then(() => this.#closeLink(link));
    }
    await this.#closed;
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

/**
 * A message too big for this worker's heap: the worker dies, as `limits.workerHeapMb` promises, by an
 * uncaught error rather than by V8, which would abort the whole process on such an allocation. The
 * main thread reaps the server, settles the calls and starts a replacement.
 */
function outOfHeap(bytes: number): void {
  const error = Object.assign(new RangeError(`a ${bytes}-byte message from the server does not fit the worker's heap`), { code: "ERR_WORKER_OUT_OF_MEMORY" });
  setImmediate(() => {
    throw error;
  });
}

/** Whether a tool's inputSchema declares an argument mirrored into an `Mcp-Param-*` header (SEP-2243). */
function declaresHeader(schema: unknown): boolean {
  const properties = (schema as { properties?: unknown } | null)?.properties;
  if (typeof properties !== "object" || properties === null) return false;
  for (const property of Object.values(properties)) if (typeof property === "object" && property !== null && "x-mcp-header" in property) return true;
  return false;
}

/** The client's negotiation mode for a server's `protocol` setting. */
function negotiationOf(protocol: string): VersionNegotiationMode {
  return protocol === "auto" || protocol === "legacy" ? protocol : { pin: protocol };
}

/** The SDK gave up negotiating the era (e.g. the server exited on the probe). */
function isNegotiationFailure(error: unknown): boolean {
  return error instanceof SdkError && error.code === SdkErrorCode.EraNegotiationFailed;
}

/** Pause before listening again for list_changed after the stream ended (2026-07-28). */
const LISTEN_AGAIN_MS = 1_000;
/** A listen stream open this long was a good one: the next pause starts from LISTEN_AGAIN_MS again. */
const LISTEN_STABLE_MS = 30_000;
/** Cap of the backoff between listens that failed or ended early (and never beyond reconnect.probeIntervalMs). */
const LISTEN_MAX_DELAY_MS = 30_000;
/**
 * Attempts in a row that fail under a verdict without a word from the server (it exits, or nothing answers)
 * before the verdict is dropped and the server probed: a server down for a restart keeps it, one that exits
 * on a request of the wrong era is found out.
 */
const UNHEARD_BEFORE_PROBE = 3;
/** HTTP statuses that are the server speaking (besides 2xx): what servers of the other era answer with. */
const ERA_STATUSES = new Set([400, 404, 405, 406, 415]);

/** Progress notifications per call and tick posted as they come; later ones in the tick are coalesced (see #take). */
const PROGRESS_BURST = 8;

/** Largest batch of results in one message (see #reply). */
const BATCH_BYTES = 32 * 1024;

/** A cheap size estimate of a result: the strings of its content items (text, base64 data, resources). */
function approxBytes(outcome: Outcome<CallToolResult>): number {
  if (!outcome.ok) return 256;
  let bytes = 256;
  const content = outcome.value.content;
  if (Array.isArray(content)) {
    for (const item of content as Array<Record<string, unknown>>) {
      if (typeof item.text === "string") bytes += item.text.length;
      if (typeof item.data === "string") bytes += item.data.length;
      const resource = item.resource as Record<string, unknown> | undefined;
      if (resource && typeof resource.text === "string") bytes += resource.text.length;
      if (resource && typeof resource.blob === "string") bytes += resource.blob.length;
    }
  }
  return bytes;
}

function fail(code: WireError["code"], message: string): Outcome<never> {
  return { ok: false, error: wireError(code, message) };
}

function describe(spec: ConnectionSpec): string {
  return spec.transport === "stdio" ? `"${[spec.command, ...spec.args].join(" ")}"` : spec.url!;
}

/**
 * The HTTP status of a failed request, if the error is one: Streamable HTTP and SSE errors carry a
 * code, the legacy SSE transport's POST failure only says it in its message.
 */
function httpStatusOf(error: unknown): number | undefined | null {
  if (error instanceof SdkHttpError) return error.status;
  if (error instanceof SseError) return error.code;
  const m = error instanceof Error ? /^Error POSTing to endpoint \(HTTP (\d{3})\)/.exec(error.message) : null;
  return m ? Number(m[1]) : null;
}

/**
 * A JSON-RPC error answer to a call, as a pool error: our transport's oversize refusal, the server's
 * "invalid params" (unknown tool or bad arguments), anything else as a protocol error with its code.
 * The message reads as the SDK's `McpError` would.
 */
function rpcError(raw: unknown): WireError {
  const { code, message, data } = (typeof raw === "object" && raw !== null ? raw : {}) as { code?: unknown; message?: unknown; data?: unknown };
  if (typeof code !== "number" || typeof message !== "string") return wireError("PROTOCOL_ERROR", `server sent a malformed error answer: ${safeJson(raw)}`);
  const text = `MCP error ${code}: ${message}`;
  if (code === RESULT_TOO_LARGE_RPC_CODE) return wireError("RESULT_TOO_LARGE", text);
  if (code === INVALID_PARAMS) {
    const which = /unknown tool|tool .*not found|no such tool/i.test(message) ? "TOOL_NOT_FOUND" : "INVALID_ARGUMENTS";
    return wireError(which, text, { mcpCode: code, data });
  }
  return wireError("PROTOCOL_ERROR", text, { mcpCode: code, data });
}

/** A skipped tool as a warning names it: its name if it has one. */
function toolLabel(raw: unknown): string {
  const name = (raw as { name?: unknown } | null)?.name;
  return typeof name === "string" ? JSON.stringify(name) : `(unnamed: ${safeJson(raw)})`;
}

/** Why a tool was refused, briefly: the first few problems, each with where it is. */
function issuesOf(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  return issues
    .slice(0, 3)
    .map((i) => (i.path?.length ? `${i.path.map((p) => String(typeof p === "object" ? p.key : p)).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

/** One tool of a listing, as the SDK's spec schema checks it. */
const TOOL = specTypeSchemas.Tool["~standard"];

/**
 * A page of tools/list, checked only as a page: its tools are checked one by one (#listTools). The
 * SDK's own check of the result (and so its `listTools()`) refuses the whole page for one bad tool.
 */
const TOOLS_PAGE: StandardSchemaV1<unknown, { tools: unknown[]; nextCursor?: string }> = {
  "~standard": {
    version: 1,
    vendor: "mcp-worker-pool",
    validate(value) {
      const page = value as { tools?: unknown; nextCursor?: unknown } | null;
      if (typeof page !== "object" || page === null || !Array.isArray(page.tools)) return { issues: [{ message: "tools/list result has no tools array" }] };
      if (page.nextCursor !== undefined && typeof page.nextCursor !== "string") return { issues: [{ message: "tools/list nextCursor is not a string", path: ["nextCursor"] }] };
      return { value: { tools: page.tools, ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}) } };
    },
  },
};

function safeJson(value: unknown): string {
  try {
    return String(JSON.stringify(value)).slice(0, 200);
  } catch {
    return String(value);
  }
}

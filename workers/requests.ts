/**
 * The request path, worker side: every `RequestMethod` the main thread sends on the data plane, from its
 * arrival to its result.
 *
 * Not through the SDK's `request()`: per request it allocates a promise, an abort listener, a timer and
 * handler closures, and zod-parses the result twice; on the worker's hot path that was most of its CPU
 * and garbage (see docs/performance.md, "Where the time goes"). A request is ours from arrival to its
 * answer: our JSON-RPC id (also its progress token), our deadline (one timer, from `timeoutMs`), our
 * cancellation (`notifications/cancelled`, as the SDK sends it); it is settled by its answer (`take`),
 * `cancel`, its timer or the loss of its link, whichever comes first. What each method means (its result
 * check, its errors) is methods.ts; what differs here by method is only in `#start`.
 *
 * Over 400 lines, one concern: a request's life on the worker, including the 2026-07-28 input rounds
 * (an `input_required` answer is a state of the same request, re-sent under the same timer).
 */
import type { MessagePort } from "node:worker_threads";
import { CLIENT_CAPABILITIES_META_KEY, type JSONRPCMessage, type Progress } from "@modelcontextprotocol/client";
import { NOT_SENT, wireError, type ClientCapabilityKind, type ConnectionState, type Outcome, type RequestMethod, type ToMain, type WireError, type WireRequest, type WireResults, pushResult, RESULT_SLOTS } from "../src/common/protocol.js";
import { checkCallResult, eraCheck } from "./call-result.js";
import { HttpCall, messageOf, type CallStreamHost } from "./http-calls.js";
import { classify, sdkError, type Link } from "./link.js";
import type { Listings } from "./listings.js";
import { capabilitiesOf, METHOD_OF_KIND, type ServerAsks } from "./server-requests.js";
import { METHODS, rpcError } from "./methods.js";
import type { Subscriptions } from "./subscriptions.js";
import { FIRST_WIRE_ID, nextWireId, ourWireId } from "./wire-ids.js";

/** What the request path needs of the connection host. */
export interface RequestHost {
  readonly data: MessagePort;
  readonly listings: Listings;
  readonly subscriptions: Subscriptions;
  readonly asks: ServerAsks;
  state(): ConnectionState;
  closing(): boolean;
  current(): Link | undefined;
  /** Closes a link on purpose (see ConnectionHost #lose). */
  lose(link: Link, reason: WireError): void;
}

/** One request, from its arrival to its settlement. */
interface Pending {
  /** The main thread's id of it. */
  id: number;
  method: RequestMethod;
  params: Record<string, unknown>;
  link: Link;
  /** Its JSON-RPC id, also its progress token; 0 while the SDK carries it, or when no message carries it. */
  wireId: number;
  timer: NodeJS.Timeout;
  timeoutMs: number;
  /** On a Streamable HTTP link: its requests' abort and its stream's resumption (see CallStreams). */
  http: HttpCall | undefined;
  /** The caller asked for progress: only then is it forwarded. */
  progress: boolean;
  /** While the SDK's client carries it (#viaSdk): its abort. */
  rounds: AbortController | undefined;
  /** Progress notifications posted this tick (see take). */
  burst: number;
  /** This tick's latest progress notification beyond the burst (its params), not posted yet. */
  latest: ProgressParams | undefined;
  /** 2026-07-28 input rounds done by the lean path (see #inputRequired). */
  round: number;
  /** The params as the caller sent them, before any round added `inputResponses` and `requestState`. */
  base: Record<string, unknown> | undefined;
  /** The main thread's handlers answering this round's input requests: their ask ids. */
  asks: number[] | undefined;
  /** 2026-07-28: what its caller can answer beyond the connection's declared capabilities (WireRequest.capabilities). */
  kinds: ClientCapabilityKind[] | undefined;
  /** Its result says its JSON-RPC id (WireRequest.traced). */
  traced: boolean;
}

type ProgressParams = { progressToken?: unknown } & Progress;

/** Progress notifications per request and tick posted as they come; later ones in the tick are coalesced (see take). */
const PROGRESS_BURST = 8;
/** Largest batch of results in one message (see #reply). */
const BATCH_BYTES = 32 * 1024;
/** Most `input_required` rounds one request goes through (the SDK client's default `inputRequired.maxRounds`). */
export const MAX_INPUT_ROUNDS = 10;
/** The origin of a server request whose call has ended: no call has this id (the main thread's ids start at 1). */
const ENDED_CALL = 0;
/** Pause before sending a request again with only the server's `requestState` (no input asked): as the SDK's driver. */
const REQUEST_STATE_PACING_MS = 250;

export class Requests {
  readonly #host: RequestHost;
  /** Requests not settled yet, by the main thread's id. */
  #pending = new Map<number, Pending>();
  /** The pending request of each of our JSON-RPC ids. */
  #byWireId = new Map<number, Pending>();
  #nextWireId = FIRST_WIRE_ID;
  /** Results of this tick, posted together at its end (flat, see WireResults). */
  #results: WireResults = [];
  #resultBytes = 0;
  /** Requests with progress to post at the end of this tick (see take). */
  #progressDue: Pending[] = [];
  /** Links retired by a 401, waiting for their last request to end (see drained). */
  #drains = new Map<Link, () => void>();

  constructor(host: RequestHost) {
    this.#host = host;
  }

  onRequest(req: WireRequest): void {
    const link = this.#host.current();
    if (this.#host.closing()) return this.#reply(req.id, fail("POOL_CLOSED", "connection is closing"));
    const state = this.#host.state();
    // A link being closed on purpose (hang, oversize) takes no new requests while its transport shuts down.
    if (state !== "ready" || !link || link.closed || link.reason) {
      // Never sent: the main thread may route it again whatever it is (see NOT_SENT).
      const code = state === "failed" ? "SERVER_UNAVAILABLE" : "CONNECTION_LOST";
      return this.#reply(req.id, { ok: false, error: wireError(code, `connection is ${state}`, { data: NOT_SENT }) });
    }
    const { method, params } = req;
    const entry = METHODS[method];
    if (!entry) return this.#reply(req.id, fail("PROTOCOL_ERROR", `unknown request method ${String(method)}`));
    if (method === "tools/call") {
      const invalid = this.#host.listings.validate(params.name as string, (params.arguments ?? {}) as Record<string, unknown>);
      if (invalid) return this.#reply(req.id, fail("INVALID_ARGUMENTS", `arguments of ${String(params.name)} do not match its inputSchema: ${invalid}`));
    }
    if (entry.subscription === "unsubscribe") this.#host.subscriptions.unsubscribed(params.uri as string);

    const timer = setTimeout(this.#expire, req.timeoutMs, req.id);
    const r: Pending = { id: req.id, method, params, link, wireId: 0, timer, timeoutMs: req.timeoutMs, http: undefined, progress: req.progress, rounds: undefined, burst: 0, latest: undefined, round: 0, base: undefined, asks: undefined, kinds: req.capabilities, traced: req.traced === true };
    this.#pending.set(req.id, r);
    if (link.modern) {
      // 2026-07-28: no subscribe verbs; the set goes in the listen stream's filter (subscriptions.ts).
      if (entry.subscription) return this.#relisten(r, entry.subscription === "subscribe");
      // A tool that mirrors arguments into HTTP headers (SEP-2243 `x-mcp-header`): the SDK writes them.
      if (link.streams && method === "tools/call" && this.#host.listings.hasHeaders(params.name as string)) return this.#viaSdk(r);
    }
    this.#send(r);
  }

  /** Sends `r` as our own JSON-RPC request. */
  #send(r: Pending): void {
    const { link } = r;
    const wireId = (r.wireId = this.#wireId());
    this.#byWireId.set(wireId, r);
    if (link.streams) r.http = new HttpCall(wireId);
    // The 2026-07-28 era: the link's envelope goes in every request's _meta (beside the caller's own, if any).
    let meta = r.progress ? { ...link.envelope, progressToken: wireId } : link.envelope;
    if (r.kinds && meta) meta = { ...meta, [CLIENT_CAPABILITIES_META_KEY]: { ...(meta[CLIENT_CAPABILITIES_META_KEY] as object | undefined), ...capabilitiesOf(r.kinds) } };
    const own = r.params._meta as Record<string, unknown> | undefined;
    const params = meta ? { ...r.params, _meta: own ? { ...own, ...meta } : meta } : r.params;
    // Keys in this order: CallStreams reads the id from the start of the serialized message.
    link.transport.send({ jsonrpc: "2.0", id: wireId, method: r.method, params }, r.http?.sendOptions).catch((error: unknown) => {
      if (this.#pending.get(r.id) === r) this.#settle(r, { ok: false, error: classify(error, link, this.#host.lose) });
    });
    if (r.method === "tools/call" && !link.modern) r.params = withoutArguments(r.params);
  }

  /** Ends `r` with `outcome`; later answers for it are dropped. */
  #settle(r: Pending, outcome: Outcome<unknown>): void {
    if (this.#pending.get(r.id) !== r) return;
    this.#pending.delete(r.id);
    if (r.wireId !== 0) this.#byWireId.delete(r.wireId);
    clearTimeout(r.timer);
    r.rounds?.abort();
    if (outcome.ok) r.link.after401 = false;
    if (r.asks) for (const ask of r.asks) this.#host.asks.end(ask, outcome.ok ? "the call ended" : `the call ended: ${outcome.error.message}`);
    if (r.http) r.link.streams!.callEnded(r.http, outcome.ok);
    // Its progress goes out ahead of its result.
    if (r.latest) this.#postProgress(r, r.latest);
    if (outcome.ok && METHODS[r.method].subscription === "subscribe" && !r.link.modern) this.#host.subscriptions.subscribed(r.params.uri as string);
    this.#reply(r.id, outcome, r.traced && r.wireId !== 0 ? r.wireId : undefined);
    if (this.#drains.size > 0) this.#drainedNow(r.link);
  }

  /** Whether any request is pending, on any link. */
  busy(): boolean {
    return this.#pending.size > 0;
  }

  /** Resolves once no request is pending on `link` (a link retired by a 401, see ConnectionHost #retire). */
  drained(link: Link): Promise<void> {
    return new Promise((resolve) => {
      this.#drains.set(link, resolve);
      this.#drainedNow(link);
    });
  }

  #drainedNow(link: Link): void {
    const resolve = this.#drains.get(link);
    if (!resolve) return;
    for (const r of this.#pending.values()) if (r.link === link) return;
    this.#drains.delete(link);
    resolve();
  }

  /**
   * Ends `r` on our side and tells the server to stop working on it: `notifications/cancelled`, or in the
   * 2026-07-28 era over Streamable HTTP by closing its stream, which #settle did (its requests are aborted
   * with it). One the SDK carries is the SDK's to cancel (#settle aborted it); one no message carries
   * (a re-listen) has nothing to cancel.
   */
  #abandon(r: Pending, error: WireError): void {
    this.#settle(r, { ok: false, error });
    const { link } = r;
    if (link.closed || r.rounds || r.wireId === 0 || (link.modern && r.http)) return;
    const params = { requestId: r.wireId, reason: error.message, ...(link.envelope ? { _meta: link.envelope } : {}) };
    link.transport.send({ jsonrpc: "2.0", method: "notifications/cancelled", params }).catch(() => {}); // a link that cannot take it is being lost anyway
  }

  readonly #expire = (id: number): void => {
    const r = this.#pending.get(id);
    if (r) this.#abandon(r, wireError("TIMEOUT", `${r.method} timed out after ${r.timeoutMs} ms`));
  };

  cancel(id: number, reason: string): void {
    const r = this.#pending.get(id);
    if (r) this.#abandon(r, wireError("ABORTED", reason));
  }

  /** The connection is closing: every request ends, and the server is told. */
  abandonAll(error: WireError): void {
    for (const r of [...this.#pending.values()]) this.#abandon(r, error);
  }

  /** `link` is gone: its requests end with the reason it was closed for, or as lost. */
  loseAll(link: Link): void {
    const error = link.reason ?? wireError("CONNECTION_LOST", "server connection lost while the request was in flight");
    for (const r of [...this.#pending.values()]) if (r.link === link) this.#settle(r, { ok: false, error });
  }

  /**
   * Sees every message of `link` before the SDK does and keeps what is ours: answers to our requests and
   * their progress. Returns false for what the SDK should handle. Any id in our range is ours: an answer
   * to a request already settled (timed out, cancelled) is dropped, not left to the SDK. Progress for a
   * request that did not ask for it is dropped (a server may send it to the request id anyway). For one
   * that did, the first PROGRESS_BURST notifications of a tick are posted as they come; of the rest, only
   * the latest, at the tick's end or ahead of the result: a flood costs the main thread a bounded number
   * of messages per request and tick, not one per notification, and the caller always hears the latest.
   */
  take(link: Link, message: JSONRPCMessage): boolean {
    if ("method" in message) {
      if (message.method !== "notifications/progress" || "id" in message) return false;
      const params = (message.params ?? {}) as ProgressParams;
      const wireId = ourWireId(params.progressToken);
      if (wireId === undefined) return false;
      const r = this.#byWireId.get(wireId);
      if (r?.link !== link || !r.progress) return true;
      if (r.burst === 0) {
        // The tick's end resets the burst (and posts what was held back).
        if (this.#progressDue.length === 0) process.nextTick(this.#flushProgress);
        this.#progressDue.push(r);
      }
      if (r.burst < PROGRESS_BURST) {
        r.burst++;
        this.#postProgress(r, params);
      } else {
        r.latest = params;
      }
      return true;
    }
    const wireId = ourWireId((message as { id?: unknown }).id);
    if (wireId === undefined) return false;
    const r = this.#byWireId.get(wireId);
    if (r?.link !== link) return true;
    if (r.http) r.http.answered = true;
    const answer = message as { result?: unknown; error?: unknown };
    if (!("result" in answer)) {
      this.#settle(r, { ok: false, error: rpcError(r.method, answer.error, r.params) });
      return true;
    }
    const checked = eraCheck(answer.result, link.modern) ?? METHODS[r.method].check(answer.result);
    if (checked.ok === true) this.#settle(r, { ok: true, value: checked.value });
    else if (checked.ok === false) this.#settle(r, fail("PROTOCOL_ERROR", checked.message));
    else this.#inputRequired(r, answer.result as Record<string, unknown>, checked.asks);
    return true;
  }

  /**
   * The legacy era's tie of a server's request (its JSON-RPC id `requestId`) to a call, as the main thread's
   * id of the call: over Streamable HTTP, the call on whose stream it came (CallStreams.originOf), exactly;
   * ENDED_CALL if that call has ended meanwhile. Else (stdio, SSE, the standalone stream) the one request
   * of the pool in flight on `link`, if there is exactly one; with none or several, none: the request is the
   * connection's (see server-requests.ts).
   */
  originOf(link: Link, requestId: string | number): number | undefined {
    const wireId = link.streams?.originOf(requestId);
    if (wireId !== undefined) {
      const r = this.#byWireId.get(wireId);
      return r?.link === link ? r.id : ENDED_CALL;
    }
    return this.#soleInFlight(link);
  }

  #soleInFlight(link: Link): number | undefined {
    let sole: number | undefined;
    for (const r of this.#pending.values()) {
      if (r.link !== link) continue;
      if (sole !== undefined) return undefined;
      sole = r.id;
    }
    return sole;
  }

  /**
   * A 2026-07-28 server answered `input_required`: it asks for input (elicitation, sampling, roots), or only
   * wants the request again with its `requestState`. The rounds are done here rather than by the SDK's
   * client: its driver calls the client's handlers with no word of the call they are for, while here each
   * input request is asked of the main thread with this request's id, so that the handlers of the session
   * whose call it is answer it, and of no other. Each round goes out on a fresh JSON-RPC id, with the answers
   * (`inputResponses`) and the byte-exact `requestState`, under the request's own timer, up to
   * MAX_INPUT_ROUNDS. Only a tool with `Mcp-Param-*` headers goes through the SDK's client (#viaSdk), rounds
   * included: there a request is tied to its call only as in the legacy era (ServerAsks.register).
   */
  #inputRequired(r: Pending, result: Record<string, unknown>, asks: boolean): void {
    if (++r.round > MAX_INPUT_ROUNDS) return this.#settle(r, fail("PROTOCOL_ERROR", `${r.method} still required input after ${MAX_INPUT_ROUNDS} rounds`));
    const requestState = typeof result.requestState === "string" ? result.requestState : undefined;
    const entries = asks ? Object.entries(result.inputRequests as Record<string, unknown>) : [];
    for (const [key, entry] of entries) {
      const method = (entry as { method?: unknown } | null)?.method;
      if (typeof method !== "string") return this.#settle(r, fail("PROTOCOL_ERROR", `the server sent an invalid input request ${JSON.stringify(key)}`));
      if (!this.#host.asks.declares(method) && !r.kinds?.some((kind) => METHOD_OF_KIND[kind] === method)) {
        return this.#settle(r, fail("PROTOCOL_ERROR", `the server asks the client for input (${method}) on ${r.method}, which no handler of this pool answers (give the pool or the session a handler for it)`));
      }
    }
    // This round's leg is answered: its id and stream are done with.
    if (r.wireId !== 0) this.#byWireId.delete(r.wireId);
    r.wireId = 0;
    if (r.http) r.link.streams!.callEnded(r.http, true);
    r.http = undefined;
    r.base ??= r.params;
    if (entries.length === 0) {
      setTimeout(() => this.#pending.get(r.id) === r && this.#again(r, undefined, requestState), REQUEST_STATE_PACING_MS).unref();
      return;
    }
    const ids: number[] = (r.asks = []);
    const responses: Record<string, unknown> = {};
    let left = entries.length;
    for (const [key, entry] of entries) {
      const { method, params } = entry as { method: string; params?: unknown };
      const { id, outcome } = this.#host.asks.ask(method, params ?? {}, r.id);
      ids.push(id);
      void outcome.then((o) => {
        if (this.#pending.get(r.id) !== r || r.asks !== ids) return;
        if (!o.ok) {
          const { code, message } = o.error;
          return this.#settle(r, { ok: false, error: wireError(code === "ABORTED" || code === "CONNECTION_LOST" ? code : "PROTOCOL_ERROR", message) });
        }
        responses[key] = o.value;
        if (--left === 0) {
          r.asks = undefined;
          this.#again(r, responses, requestState);
        }
      });
    }
  }

  /** Sends `r` again with this round's answers and the server's `requestState`. */
  #again(r: Pending, inputResponses: Record<string, unknown> | undefined, requestState: string | undefined): void {
    const params: Record<string, unknown> = { ...r.base };
    if (inputResponses) params.inputResponses = inputResponses;
    if (requestState !== undefined) params.requestState = requestState;
    r.params = params;
    if (r.link.closed || r.link.reason) return this.#settle(r, { ok: false, error: r.link.reason ?? wireError("CONNECTION_LOST", "server connection lost between input rounds") });
    this.#send(r);
  }

  /**
   * Hands a tools/call to the SDK's `callTool()`, for what the lean path does not do: the `Mcp-Param-*`
   * headers of a tool that declares them (its `input_required` rounds then go through the SDK's driver). Under the request's own deadline and
   * cancellation; its progress as the lean path posts it.
   */
  #viaSdk(r: Pending): void {
    if (r.wireId !== 0) this.#byWireId.delete(r.wireId);
    r.wireId = 0;
    const rounds = (r.rounds = new AbortController());
    const name = r.params.name as string;
    const tool = this.#host.listings.toolOf(name);
    const onprogress = r.progress ? (progress: Progress) => this.#pending.get(r.id) === r && this.#postProgress(r, progress) : undefined;
    r.link.client
      .callTool({ name, arguments: r.params.arguments as Record<string, unknown>, ...(r.params._meta ? { _meta: r.params._meta as Record<string, unknown> } : {}) }, { signal: rounds.signal, timeout: r.timeoutMs, onprogress, ...(tool ? { toolDefinition: tool } : {}) })
      .then(
        (result) => {
          const checked = checkCallResult(result, true);
          this.#settle(r, checked.ok === true ? { ok: true, value: checked.value } : fail("PROTOCOL_ERROR", checked.ok === false ? checked.message : "server asked for input again after the client's last round"));
        },
        (error: unknown) => this.#settle(r, { ok: false, error: sdkError(r.method, r.params, error, r.link, this.#host.lose) }),
      );
  }

  /** 2026-07-28 resources/(un)subscribe: answered `{}` once a listen stream with the new set is open. */
  #relisten(r: Pending, subscribe: boolean): void {
    void this.#host.subscriptions.relistenFor(r.link, r.params.uri as string, subscribe).then((error) => {
      if (error === undefined) this.#settle(r, { ok: true, value: {} });
      else this.#settle(r, { ok: false, error: sdkError(r.method, r.params, error, r.link, this.#host.lose) });
    });
  }

  readonly #flushProgress = (): void => {
    const due = this.#progressDue;
    this.#progressDue = [];
    for (const r of due) {
      if (this.#pending.get(r.id) !== r) continue;
      if (r.latest) this.#postProgress(r, r.latest);
      r.latest = undefined;
      r.burst = 0;
    }
  };

  #postProgress(r: Pending, params: ProgressParams): void {
    const { progressToken: _, ...progress } = params;
    this.#post({ op: "progress", id: r.id, progress });
  }

  #wireId(): number {
    let id = this.#nextWireId;
    while (this.#byWireId.has(id)) id = nextWireId(id);
    this.#nextWireId = nextWireId(id);
    return id;
  }

  /**
   * Results wait for the end of this tick, then go together (a request's progress still due is posted
   * ahead of its result, in #settle). A batch stays under BATCH_BYTES: unbounded batches of large results
   * cost the main thread more per call (see docs/performance.md). Large messages are not the reason: V8
   * deserializes even 1.6 MB batches into the young generation.
   */
  #reply(id: number, outcome: Outcome<unknown>, rpcId?: number): void {
    const bytes = approxBytes(outcome);
    if (this.#results.length > 0 && this.#resultBytes + bytes > BATCH_BYTES) this.#flushResults();
    if (this.#results.length === 0) process.nextTick(this.#flushResults);
    pushResult(this.#results, id, outcome, rpcId);
    this.#resultBytes += bytes;
  }

  readonly #flushResults = (): void => {
    const results = this.#results;
    if (results.length === 0) return;
    this.#results = [];
    this.#resultBytes = 0;
    try {
      this.#post(results);
    } catch {
      // One result cannot be cloned: send them one by one, so that only its request fails.
      for (let i = 0; i < results.length; i += RESULT_SLOTS) {
        const one = results.slice(i, i + RESULT_SLOTS);
        try {
          this.#post(one);
        } catch (error) {
          const failed: WireResults = [];
          pushResult(failed, one[0] as number, fail("PROTOCOL_ERROR", `unserializable result: ${messageOf(error)}`), undefined);
          this.#post(failed);
        }
      }
    }
  };

  #post(message: ToMain): void {
    this.#host.data.postMessage(message);
  }

  /** What the fetch of a Streamable HTTP link asks about its requests, and reports. */
  callStreamHost(linkOf: () => Link | undefined): CallStreamHost {
    return {
      callOf: (wireId) => {
        const r = this.#byWireId.get(wireId);
        return r && r.link === linkOf() ? r.http : undefined;
      },
      callAt: (lastEventId) => {
        const link = linkOf();
        for (const r of this.#pending.values()) if (r.link === link && r.http?.lastEventId === lastEventId) return r.http;
        return undefined;
      },
      // What the SDK would leave waiting: a stream ended without the answer, a resumption that failed.
      fail: (http, why) => {
        const r = this.#byWireId.get(http.wireId);
        if (r?.http === http) this.#abandon(r, wireError("CONNECTION_LOST", why));
      },
      broken: (error) => {
        const link = linkOf();
        if (link) this.#host.lose(link, wireError("CONNECTION_LOST", `the server's answer broke off: ${messageOf(error)}`));
      },
      // Reopen with a new initialize; the requests it fails are retried under the usual rules.
      sessionGone: (why) => {
        const link = linkOf();
        if (link) this.#host.lose(link, wireError("CONNECTION_LOST", `the server no longer knows our session (${why})`));
      },
    };
  }
}

/** A cheap size estimate of a result: the strings of its content items (text, base64 data, resources). */
function approxBytes(outcome: Outcome<unknown>): number {
  if (!outcome.ok) return 256;
  let bytes = 256;
  const value = outcome.value as { content?: unknown; contents?: unknown; messages?: unknown };
  const items = Array.isArray(value.content) ? value.content : Array.isArray(value.contents) ? value.contents : Array.isArray(value.messages) ? value.messages : undefined;
  if (items) {
    for (const raw of items as Array<Record<string, unknown>>) {
      // A prompt message holds its content one level down.
      const item = (raw.content && typeof raw.content === "object" ? raw.content : raw) as Record<string, unknown>;
      if (typeof item.text === "string") bytes += item.text.length;
      if (typeof item.data === "string") bytes += item.data.length;
      if (typeof item.blob === "string") bytes += item.blob.length;
      const resource = item.resource as Record<string, unknown> | undefined;
      if (resource && typeof resource.text === "string") bytes += resource.text.length;
      if (resource && typeof resource.blob === "string") bytes += resource.blob.length;
    }
  }
  return bytes;
}

/**
 * A legacy tools/call's params once they are written: nothing reads its arguments again (its error
 * mapping reads none, and the legacy era has no input rounds to send them again), so the request lets
 * them go. Held for the whole call, large arguments outlived two of the worker's scavenges and were
 * promoted: at 16 calls in flight with 100 KB arguments, 180 KB promoted per call and most of the
 * worker's CPU in garbage collection (docs/performance.md, "Host CPU at 100 KB").
 */
function withoutArguments(params: Record<string, unknown>): Record<string, unknown> {
  if (!("arguments" in params)) return params;
  const { arguments: _, ...rest } = params;
  return rest;
}

function fail(code: WireError["code"], message: string): Outcome<never> {
  return { ok: false, error: wireError(code, message) };
}

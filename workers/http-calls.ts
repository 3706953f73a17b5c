/**
 * The `fetch` of a Streamable HTTP link, aware of the requests it carries for the request path
 * (requests.ts; "calls" here).
 *
 * The SDK's transport speaks the protocol, resumption included: when an answer stream ends after an
 * event id, it reopens it with a GET carrying `Last-Event-ID`, after the server's `retry:` delay
 * (SEP-1699). What it cannot know is which call a request belongs to, so on its own it leaves some calls
 * waiting until their deadline and some requests open on the server for good. Seen from here:
 * - a call's requests (its POST, the GETs resuming its stream) carry the call's own abort signal: a call
 *   that ends on our side (timeout, abort, lost link) ends its requests, and their sockets, with it (a
 *   closed transport ends every call of its link, so the transport's own signal need not be listened to);
 * - the stream of a call that ended is not resumed (the SDK's GET gets a 405 here, which it takes as "no
 *   stream" without trying again), for as long as the SDK may still ask (ENDED_STREAM_MS);
 * - a call whose stream ended without the answer fails (`fail`) when the stream cannot be resumed (no
 *   event id), when resuming it failed a few times, or when no resumed stream came within RESUME_WAIT_MS
 *   (however long the server's `retry:`): the SDK would leave it waiting until its deadline;
 * - a stream that breaks off is reported (`broken`): the SDK only tells `onerror`, and the server most
 *   likely died mid-answer (a stream the server ends cleanly is not broken: it may be resumed);
 * - an answer to a request on our session saying the session is not valid is reported (`sessionGone`);
 * - legacy era, a connection that declares client capabilities: a request the server sends on a call's
 *   stream (sampling, elicitation, roots, sent "related" to the call, as the SDKs' servers do) is noted as
 *   that call's (`originOf`), so that it is tied to exactly that call. The SDK's transport hands such a
 *   request to the client with no word of the stream it came on, so the stream's events are read here
 *   too, before the SDK gets them.
 */
import type { FetchLike, TransportSendOptions } from "@modelcontextprotocol/client";
import { ourWireId } from "./wire-ids.js";

/** Attempts to reopen one ended stream (the SDK's `maxRetries`): a few, each after `retry:` or our backoff. */
export const RESUME_ATTEMPTS = 3;

/**
 * The SDK transport's `reconnectionOptions`. A server's `retry:` replaces the backoff as the SDK honours it;
 * the host bounds the whole wait with RESUME_WAIT_MS.
 */
export const RECONNECTION_OPTIONS = {
  maxRetries: RESUME_ATTEMPTS,
  initialReconnectionDelay: 250,
  maxReconnectionDelay: 2_000,
  reconnectionDelayGrowFactor: 2,
};

/** How long a call waits for its ended stream to be resumed, before it fails with CONNECTION_LOST. */
export const RESUME_WAIT_MS = 10_000;

/**
 * How long the event id of an ended call's stream is remembered, so that the SDK's GET to resume it is
 * refused: the SDK asks within one reconnection delay of the stream's end (our backoff, at most
 * `maxReconnectionDelay`, or the server's `retry:`), and a pending call waits RESUME_WAIT_MS at most.
 * Bounded by time, not by count: however many calls end at once, none of their GETs passes as the
 * standalone stream's and reopens a stream on the server for a call nobody waits for.
 */
export const ENDED_STREAM_MS = 60_000;

/**
 * One request of the request path on a Streamable HTTP link: the abort of its requests, and where its answer stream can
 * be resumed from.
 */
export class HttpCall extends AbortController {
  /** Its JSON-RPC id. */
  readonly wireId: number;
  /** The server answered it (result or error): nothing of it is to be aborted. */
  answered = false;
  /** The last SSE event id of its streams: set once the server made them resumable. */
  lastEventId: string | undefined = undefined;
  /** Failed attempts to resume its stream since it last had one. */
  resumeFailures = 0;
  /** The bound on the wait for a resumed stream (RESUME_WAIT_MS). */
  resumeTimer: NodeJS.Timeout | undefined = undefined;
  /** For `transport.send()`: the SDK's only per-request hook, told each event id of the call's streams. */
  readonly sendOptions: TransportSendOptions;

  constructor(wireId: number) {
    super();
    this.wireId = wireId;
    this.sendOptions = { onresumptiontoken: (id) => void (this.lastEventId = id) };
  }

  /** A stream of it was reopened: the wait and the failures start over. */
  resumed(): void {
    this.resumeFailures = 0;
    clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
  }
}

/** What the connection host tells and is told about the calls of one link. */
export interface CallStreamHost {
  /** The call still pending on this link that our JSON-RPC id `wireId` belongs to. */
  callOf(wireId: number): HttpCall | undefined;
  /** The call still pending on this link whose stream last carried the event id `lastEventId`. */
  callAt(lastEventId: string): HttpCall | undefined;
  /** `call`, if still pending, is to fail with CONNECTION_LOST: its answer cannot come any more. */
  fail(call: HttpCall, why: string): void;
  /** A response stream broke off, not by an abort of ours. */
  broken(error: unknown): void;
  /** A request on our session was answered "session not valid". */
  sessionGone(why: string): void;
}

/**
 * Our requests as the transport serializes them (`JSON.stringify` of the object the host builds, keys
 * in its order): the id comes first, and is read without parsing the params. A method after it tells
 * them from the SDK's error answers to server requests, which start alike; an id in our range (see
 * wire-ids.ts) from the SDK's own requests (initialize, listings, pings), which are not calls.
 */
const CALL_PREFIX = '{"jsonrpc":"2.0","id":';
const CALL_METHOD = ',"method":"';

/**
 * A 400 that means "your session is not valid": the words the SDK's example servers, server-everything and
 * the Python SDK use ("Bad Request: No valid session ID provided", "Invalid or missing session ID",
 * "Session not found"), and the SDK transport's own "Server not initialized" from a server that restarted.
 */
const SESSION_GONE = /(invalid|no valid|not valid|unknown|expired|stale)\b[^.]{0,40}session|session\b[^.]{0,40}\b(invalid|not valid|not found|unknown|expired|terminated)|not initialized/i;

export class CallStreams {
  readonly #host: CallStreamHost;
  /** Whether the server may send requests on calls' streams now that we answer (see originOf), and which. */
  readonly #scan: ServerRequestScan | undefined;
  /**
   * Server requests seen on a call's stream and not yet taken by their handler: the call's wire id, by the
   * request's id. Kept after the call ends (its handler is then told so, never another call's); only the
   * methods the connection declares are noted, which the SDK hands to those handlers, so each is taken.
   */
  readonly #origins = new Map<string, number>();
  #fetch!: FetchLike;
  /**
   * Event ids at which streams of ended calls stopped (the SDK may still try to resume them), in two
   * generations of ENDED_STREAM_MS: each id is kept at least that long, and at most twice that.
   */
  #ended = new Set<string>();
  #endedBefore = new Set<string>();
  #endedSince = 0;

  constructor(host: CallStreamHost, scan?: ServerRequestScan) {
    this.#host = host;
    this.#scan = scan;
  }

  /** The wire id of the call on whose stream the server sent its request `requestId`, once (see the module's doc). */
  originOf(requestId: string | number): number | undefined {
    const key = requestKey(requestId);
    const wireId = this.#origins.get(key);
    if (wireId !== undefined) this.#origins.delete(key);
    return wireId;
  }

  /** The fetch for the transport, over `fetch`. */
  over(fetch: FetchLike): FetchLike {
    this.#fetch = fetch;
    return this.#route;
  }

  /** `call` ended: unless the server answered it, its requests are aborted, and its stream is never resumed. */
  callEnded(call: HttpCall, result: boolean): void {
    clearTimeout(call.resumeTimer);
    if (!call.answered) call.abort();
    // After a result the SDK resumes nothing; after an error answer or an abort it would.
    if (result || call.lastEventId === undefined) return;
    const now = Date.now();
    if (now - this.#endedSince >= ENDED_STREAM_MS) {
      this.#endedBefore = this.#ended;
      this.#ended = new Set();
      this.#endedSince = now;
    }
    this.#ended.add(call.lastEventId);
  }

  readonly #route: FetchLike = (url, init) => {
    if (init?.method === "POST") return this.#post(url, init);
    const lastEventId = init?.method === "GET" ? new Headers(init.headers).get("last-event-id") : null;
    return lastEventId === null ? this.#fetch(url, init) : this.#resume(url, init!, lastEventId);
  };

  async #post(url: string | URL, init: RequestInit): Promise<Response> {
    const wireId = wireIdOf(init.body);
    const call = wireId === undefined ? undefined : this.#host.callOf(wireId);
    // A call that ended before the transport got to send it (its deadline passed in a busy moment): nobody
    // waits for it, so it is not sent. To the SDK, a 202 is a message accepted.
    if (wireId !== undefined && !call) return new Response(null, { status: 202, statusText: "Call ended before it was sent" });
    const response = call ? await this.#send(url, init, call) : await this.#fetch(url, init);
    // Only a 200 brings a call's answer (a 202 accepts a notification; an error status brings none).
    const answering = response.ok && response.status !== 202 && response.body ? call : undefined;
    if (!response.ok) return response.status === 400 || response.status === 404 ? this.#checkSession(response, init) : response;
    return response.body ? this.#watch(response, answering) : response;
  }

  /** A GET resuming a stream: of a pending call (with its signal), of an ended call (refused), or not a call's. */
  async #resume(url: string | URL, init: RequestInit, lastEventId: string): Promise<Response> {
    const call = this.#host.callAt(lastEventId);
    if (!call) {
      if (this.#ended.has(lastEventId) || this.#endedBefore.has(lastEventId)) return new Response(null, { status: 405, statusText: "Stream of an ended call" });
      return this.#fetch(url, init); // the standalone stream
    }
    let response: Response;
    try {
      response = await this.#send(url, init, call);
    } catch (error) {
      if (!isAbort(error)) this.#resumeFailed(call, false, messageOf(error));
      throw error;
    }
    if (!response.ok || !response.body) {
      // The SDK tries again after any failure but a 405, which ends its attempts.
      this.#resumeFailed(call, response.status === 405, `HTTP ${response.status}`);
      return response;
    }
    call.resumed();
    return this.#watch(response, call);
  }

  /**
   * Fetches with the call's signal instead of the transport's. A transport that closes ends every call of
   * its link (the host's loss of the link), which aborts their requests: no listener per call on its signal.
   */
  #send(url: string | URL, init: RequestInit, call: HttpCall): Promise<Response> {
    if (init.signal?.aborted) call.abort(); // closed already: the call is being ended with its link
    return this.#fetch(url, { ...init, signal: call.signal });
  }

  /** Passes the body through, reporting how it ends: broken, or (for a call) ended. */
  #watch(response: Response, call: HttpCall | undefined): Response {
    const reader = response.body!.getReader();
    const host = this.#host;
    const afterEnd = this.#afterEnd;
    const events = call && this.#scan?.active() ? new EventScanner((message) => this.#noteRequest(message, call)) : undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (!isAbort(error)) host.broken(error);
          controller.error(error);
          return;
        }
        if (chunk.done && call) {
          // A turn later: the answer may have come in the last chunk, still in the SDK's parser now.
          setImmediate(afterEnd, call);
        }
        // Before the SDK parses it: the request is noted as the call's before its handler asks whose it is.
        if (events && !chunk.done) events.push(chunk.value);
        try {
          if (chunk.done) controller.close();
          else controller.enqueue(chunk.value);
        } catch {
          // the reader cancelled this stream meanwhile (it had what it wanted)
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  }

  /** A stream of `call` ended without error, a turn ago: if the call still waits, its answer did not come. */
  readonly #afterEnd = (call: HttpCall): void => {
    if (this.#host.callOf(call.wireId) !== call) return;
    if (call.lastEventId === undefined) {
      this.#host.fail(call, "the server ended the call's answer stream without the answer or an event id to resume it from");
    } else {
      call.resumeTimer ??= setTimeout(this.#resumeExpired, RESUME_WAIT_MS, call);
    }
  };

  /** An event on `call`'s stream that may be a request of the server's: noted as the call's if it is one. */
  #noteRequest(data: string, call: HttpCall): void {
    let message: { method?: unknown; id?: unknown };
    try {
      message = JSON.parse(data) as typeof message;
    } catch {
      return; // the SDK reports it
    }
    if (typeof message?.method !== "string" || (typeof message.id !== "string" && typeof message.id !== "number")) return;
    if (!this.#scan!.declares(message.method)) return;
    // A bound against a server whose requests the SDK refuses before any handler (invalid params): the oldest go.
    if (this.#origins.size >= MAX_NOTED_REQUESTS) this.#origins.delete(this.#origins.keys().next().value!);
    this.#origins.set(requestKey(message.id), call.wireId);
  }

  readonly #resumeExpired = (call: HttpCall): void => {
    this.#host.fail(call, `the server did not resume the call's answer stream within ${RESUME_WAIT_MS} ms`);
  };

  #resumeFailed(call: HttpCall, final: boolean, why: string): void {
    if (final || ++call.resumeFailures >= RESUME_ATTEMPTS) this.#host.fail(call, `could not resume the call's answer stream: ${why}`);
  }

  /** A 400 or 404 to a request on our session: is it the server saying it no longer knows the session? */
  async #checkSession(response: Response, init: RequestInit): Promise<Response> {
    if (!new Headers(init.headers).has("mcp-session-id")) return response;
    const text = await response.text();
    if (response.status === 404 || SESSION_GONE.test(text)) this.#host.sessionGone(`HTTP ${response.status}: ${text.slice(0, 200)}`);
    return new Response(text, { status: response.status, statusText: response.statusText, headers: response.headers });
  }
}

/** Which server requests CallStreams notes as the requests of the call on whose stream they came. */
export interface ServerRequestScan {
  /** The link may carry such requests now (the legacy era, a connection that declares capabilities). */
  active(): boolean;
  /** The connection declares what `method` needs: its handler will take the note. */
  declares(method: string): boolean;
}

/** Most server requests noted and not yet taken by their handler, on one link. */
const MAX_NOTED_REQUESTS = 1024;

/** A JSON-RPC id as a map key (1 and "1" are different ids). */
function requestKey(id: string | number): string {
  return typeof id === "number" ? `n${id}` : `s${id}`;
}

/**
 * The `data` of the events of one SSE stream, as it streams in: only those that may be a request (they
 * name a `method`) are handed on, to be parsed. Lines end with CRLF, LF or CR; an event ends at a blank line.
 */
class EventScanner {
  readonly #onEvent: (data: string) => void;
  readonly #decoder = new TextDecoder();
  #partial = "";
  #data: string[] = [];

  constructor(onEvent: (data: string) => void) {
    this.#onEvent = onEvent;
  }

  push(bytes: Uint8Array): void {
    let text = this.#partial + this.#decoder.decode(bytes, { stream: true });
    // A CR at the very end may be half of a CRLF: its line waits for the next chunk, which decides.
    const cr = text.endsWith("\r");
    if (cr) text = text.slice(0, -1);
    const lines = text.split(/\r\n|\r|\n/);
    this.#partial = lines.pop()! + (cr ? "\r" : "");
    for (const line of lines) {
      if (line === "") {
        const data = this.#data.join("\n");
        this.#data = [];
        if (data.includes('"method"')) this.#onEvent(data);
      } else if (line.startsWith("data:")) {
        this.#data.push(line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5));
      }
    }
  }
}

/** The JSON-RPC id of one of our request messages. */
function wireIdOf(body: unknown): number | undefined {
  if (typeof body !== "string" || !body.startsWith(CALL_PREFIX)) return undefined;
  const end = body.indexOf(",", CALL_PREFIX.length);
  if (end < 0 || !body.startsWith(CALL_METHOD, end)) return undefined;
  return ourWireId(Number(body.slice(CALL_PREFIX.length, end)));
}

function isAbort(error: unknown): boolean {
  return (error as { name?: string } | null)?.name === "AbortError";
}

/** An error's message, and its cause's (undici's "fetch failed" says why only there). */
export function messageOf(error: unknown): string {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const text = error instanceof Error ? error.message : String(error);
  return cause instanceof Error ? `${text} (${cause.message})` : text;
}

/**
 * A link: one open transport and the SDK client on it, a new one per (re)open of a connection; the
 * transports it can be made of; and what a failure on it means to a request (classify, sdkError).
 */
import {
  Client,
  ProtocolError,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  SseError,
  SSEClientTransport,
  StreamableHTTPClientTransport,
  type McpSubscription,
  type Transport,
  type VersionNegotiationMode,
} from "@modelcontextprotocol/client";
import { NOT_SENT, wireError, type ConnectionSpec, type RequestMethod, type WireError } from "../src/common/protocol.js";
import { ProcessGroupStdioTransport } from "./stdio-transport.js";
import { commandOf, type Launched } from "./server-process.js";
import { MessageTooLargeError, sizeLimitedFetch } from "./http-limit.js";
import { CallStreams, messageOf, RECONNECTION_OPTIONS } from "./http-calls.js";
import { rpcError } from "./methods.js";

/**
 * The SDK's client, with the one thing of its own the pool needs for the requests it sends itself: the
 * `_meta` envelope (protocol version, client info and capabilities) that every request of the
 * 2026-07-28 era carries. The SDK builds it for its own requests in a protected method.
 */
export class PoolClient extends Client {
  /** This connection's envelope; `undefined` in the legacy era, whose requests carry none. */
  envelope(): Readonly<Record<string, unknown>> | undefined {
    return this._outboundMetaEnvelope();
  }
}

export interface Link {
  client: PoolClient;
  /** The 2026-07-28 era (stateless, `server/discover`): set once connected. */
  modern: boolean;
  /** The `_meta` envelope of its requests (modern era only). */
  envelope: Readonly<Record<string, unknown>> | undefined;
  /** Modern era: the `subscriptions/listen` stream open now (list_changed, resource updates). */
  listening: McpSubscription | undefined;
  /** The server answered something on it (a message on stdio, an HTTP answer or era refusal): it is there and speaks. */
  heard: boolean;
  transport: Transport;
  /** Resolves when this link's transport has closed, for whatever reason. */
  lost: Promise<void>;
  /**
   * Resolves when a 401 retires this link (`reason` is set then): the host reconnects with headers asked
   * again, while the requests the server took on this link finish on it, which closes once they have.
   */
  superseded: Promise<void>;
  supersede: () => void;
  closed: boolean;
  /** Why the pool closed it on purpose (hang, oversize); requests lost with it get this error. */
  reason?: WireError;
  /** Streamable HTTP: what its fetch knows of the requests it carries. */
  streams: CallStreams | undefined;
  /** List kinds a list_changed asked to list again before the link was ready: listed once it is (listings.ts). */
  stale: Set<"tools" | "resources" | "prompts">;
  /**
   * Opened after a 401 with headers asked again, and nothing succeeded on it yet: another 401 fails its
   * request (SERVER_UNAVAILABLE) instead of reconnecting again.
   */
  after401: boolean;
  /**
   * A request got HTTP 401: true when it is to be sent again (the host reconnects with headers asked again,
   * or is doing so already); false when this link is that reconnect, and still refused.
   */
  unauthorized?: (link: Link) => boolean;
}

/** What a transport tells its host beyond the JSON-RPC messages. */
export interface TransportHooks {
  onpid(pid: number, startTime: string | undefined): void;
  /** The server spoke (see Link.heard). */
  onheard(): void;
  /** A message over `maxMessageBytes` was refused; `id` is its request's when known. */
  onoversize(id: string | number | undefined): void;
  /** stdio: the server launched ahead for this connection, if it is still there to take (see StdioOptions.adopt). */
  adopt?: () => Launched | undefined;
}

export function createTransport(spec: ConnectionSpec, hooks: TransportHooks, streams: CallStreams | undefined): Transport {
  if (spec.transport === "stdio") {
    return new ProcessGroupStdioTransport({
      ...commandOf(spec),
      maxMessageBytes: spec.maxMessageBytes,
      adopt: hooks.adopt,
      onpid: hooks.onpid,
      onheard: hooks.onheard,
      onoversize: hooks.onoversize,
      onheaplimit: outOfHeap,
    });
  }
  const requestInit = { headers: spec.headers };
  const url = new URL(spec.url!);
  // The server speaking: an answer, or the statuses a server of the other era answers with. Not a 5xx (a
  // proxy in front of a server that is down), nor what an ingress or gateway says of the request itself
  // (401, 403, 408, 429), which tell nothing of the server's era.
  const limited = sizeLimitedFetch(spec.maxMessageBytes, () => hooks.onoversize(undefined), (status) => {
    if ((status >= 200 && status < 300) || ERA_STATUSES.has(status)) hooks.onheard();
  });
  if (spec.transport === "sse") return new SSEClientTransport(url, { requestInit, fetch: limited });
  // The SDK resumes a stream the server ended after an event id (SEP-1699), a few times; CallStreams
  // ties each request to its call and tells the host what the SDK cannot settle.
  return new StreamableHTTPClientTransport(url, { requestInit, fetch: streams!.over(limited), reconnectionOptions: RECONNECTION_OPTIONS });
}

export function pidOf(transport: Transport): number | undefined {
  return transport instanceof ProcessGroupStdioTransport ? transport.pid : undefined;
}

/** The client's negotiation mode for a server's `protocol` setting. */
export function negotiationOf(protocol: string): VersionNegotiationMode {
  return protocol === "auto" || protocol === "legacy" ? protocol : { pin: protocol };
}

/** The SDK gave up negotiating the era (e.g. the server exited on the probe). */
export function isNegotiationFailure(error: unknown): boolean {
  return error instanceof SdkError && error.code === SdkErrorCode.EraNegotiationFailed;
}

export function describe(spec: ConnectionSpec): string {
  return spec.transport === "stdio" ? `"${[spec.command, ...spec.args].join(" ")}"` : spec.url!;
}

/**
 * Why sending a request on `link` failed. `lose` closes the link on purpose (the host's #lose), for
 * failures that say what we were talking to is gone.
 */
export function classify(error: unknown, link: Link, lose: (link: Link, reason: WireError) => void): WireError {
  const status = httpStatusOf(error);
  if (status !== null) {
    // Credentials expired: the server refused the request without processing it, so it is sent again, whatever
    // it is (a tool call too), on the link reopened with headers asked again; once only (see Link.after401).
    // Before the check of a closed link: the other requests refused with it while the first 401 was closing
    // the link were not processed either.
    if (status === 401) {
      if (link.unauthorized?.(link)) return wireError("CONNECTION_LOST", `HTTP 401 from server: reconnecting with fresh headers`, { data: NOT_SENT });
      return wireError("SERVER_UNAVAILABLE", `HTTP 401 from server${link.after401 ? " (after asking for headers again and reconnecting)" : ""}: ${messageOf(error)}`, { data: { httpStatus: 401 } });
    }
    // A link closed meanwhile loses the request, as the loss of the link would. On Streamable HTTP that is
    // how a "session gone" answer (a 404, or a 400 saying so) ends here: CallStreams alone judges the
    // answer, and closed the link for it (one initialize for everyone who noticed).
    if (link.reason || link.closed) return link.reason ?? wireError("CONNECTION_LOST", `server connection lost: ${messageOf(error)}`);
    // A 404 no CallStreams took for a lost session (legacy SSE's POST endpoint, a server without
    // sessions): what we were talking to is gone. Reopen.
    if (status === 404 || status === undefined || status >= 500) {
      lose(link, wireError("CONNECTION_LOST", `HTTP ${status ?? "error"}: ${messageOf(error)}`));
      return wireError("CONNECTION_LOST", `HTTP ${status ?? "error"} from server: ${messageOf(error)}`);
    }
    return wireError("SERVER_UNAVAILABLE", `HTTP ${status} from server: ${messageOf(error)}`);
  }
  if (error instanceof MessageTooLargeError) return wireError("RESULT_TOO_LARGE", error.message);
  if (link.closed) return link.reason ?? wireError("CONNECTION_LOST", `server connection lost: ${messageOf(error)}`);
  if (error instanceof TypeError && /fetch failed|network|ECONN|socket/i.test(`${error.message} ${messageOf(error.cause)}`)) {
    lose(link, wireError("CONNECTION_LOST", `server unreachable: ${messageOf(error.cause ?? error)}`));
    return wireError("CONNECTION_LOST", `server unreachable: ${messageOf(error.cause ?? error)}`);
  }
  return wireError("PROTOCOL_ERROR", messageOf(error));
}

/** Why a request the SDK carried (a tools/call through its input rounds, a re-listen) failed. */
export function sdkError(method: RequestMethod, params: Record<string, unknown>, error: unknown, link: Link, lose: (link: Link, reason: WireError) => void): WireError {
  if (httpStatusOf(error) === 401) return classify(error, link, lose);
  if (link.closed || link.reason) return link.reason ?? wireError("CONNECTION_LOST", `server connection lost: ${messageOf(error)}`);
  if (error instanceof ProtocolError) return rpcError(method, { code: error.code, message: error.message, data: error.data }, params);
  if (error instanceof SdkError && error.code === SdkErrorCode.RequestTimeout) return wireError("TIMEOUT", `${method} timed out: ${error.message}`);
  if (httpStatusOf(error) !== null) return classify(error, link, lose);
  return wireError("PROTOCOL_ERROR", messageOf(error));
}

/** A graceful close tells a Streamable HTTP server to drop our session (DELETE), briefly. */
export async function endHttpSession(link: Link | undefined): Promise<void> {
  const transport = link?.transport;
  if (!link || link.closed || !(transport instanceof StreamableHTTPClientTransport) || !transport.sessionId) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    transport.terminateSession().catch(() => {}),
    new Promise((resolve) => (timer = setTimeout(resolve, HTTP_TERMINATE_MS))),
  ]);
  clearTimeout(timer);
}

export async function closeLink(link: Link | undefined): Promise<void> {
  if (!link) return;
  try {
    await link.transport.close();
  } catch {
    // already gone
  }
  link.closed = true;
}

/**
 * The HTTP status of a failed request, if the error is one: Streamable HTTP and SSE errors carry a
 * code, the legacy SSE transport's POST failure only says it in its message.
 */
export function httpStatusOf(error: unknown): number | undefined | null {
  if (error instanceof SdkHttpError) return error.status;
  if (error instanceof SseError) return error.code;
  const m = error instanceof Error ? /^Error POSTing to endpoint \(HTTP (\d{3})\)/.exec(error.message) : null;
  return m ? Number(m[1]) : null;
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

/** HTTP statuses that are the server speaking (besides 2xx): what servers of the other era answer with. */
const ERA_STATUSES = new Set([400, 404, 405, 406, 415]);
/** How long a graceful close waits for the HTTP server to acknowledge the session's end. */
const HTTP_TERMINATE_MS = 1_000;

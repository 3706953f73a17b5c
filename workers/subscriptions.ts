/**
 * What the server tells the connection unasked: resource updates for the URIs it subscribed to, and
 * (2026-07-28) list_changed, both of which come on one `subscriptions/listen` stream in that era.
 *
 * The host is the only owner of the connection's subscriptions: it keeps the set of URIs (starting from
 * `spec.subscriptions`, for a replacement host), and subscribes to all of them again after every
 * (re)connect. Legacy era: `resources/subscribe` per URI, list_changed as plain notifications.
 * 2026-07-28: there are no subscribe verbs; the set goes in the listen stream's filter
 * (`resourceSubscriptions`), so a change of the set is a new stream with the new filter, opened before
 * the old one is closed (no gap in which an update is lost).
 */
import type { LoggingLevel, McpSubscription, SubscriptionFilter } from "@modelcontextprotocol/client";
import type { ConnectionSpec } from "../src/common/protocol.js";
import { backoffDelay } from "../src/common/backoff.js";
import { messageOf } from "./http-calls.js";
import type { Link } from "./link.js";
import type { Listings } from "./listings.js";

export interface SubscriptionHost {
  readonly spec: ConnectionSpec;
  readonly listings: Listings;
  current(): Link | undefined;
  /** `notifications/resources/updated` for a URI in the set. */
  updated(uri: string): void;
  log(level: LoggingLevel, data: string): void;
}

/** The outcome of one listen: the set's generation it carried, and its failure if it failed. */
interface Listened {
  generation: number;
  error?: unknown;
  /** The filter the server agreed to honour. */
  honored?: SubscriptionFilter;
}

export class Subscriptions {
  readonly #host: SubscriptionHost;
  readonly #uris: Set<string>;
  /** Bumped at every change of the set: a listen carries the set of its generation. */
  #generation = 0;
  /** The listen being opened now: listens are opened one at a time, each with the latest set. */
  #opening: Promise<Listened> | undefined;

  constructor(host: SubscriptionHost, initial: readonly string[]) {
    this.#host = host;
    this.#uris = new Set(initial);
  }

  /** A server's `notifications/resources/updated`: passed on for a URI in the set, dropped for any other (one unsubscribed meanwhile). */
  onUpdated(uri: unknown): void {
    if (typeof uri === "string" && this.#uris.has(uri)) this.#host.updated(uri);
  }

  /**
   * After a connect, before the connection is reported ready: subscribes to the set again (legacy), or
   * opens the listen stream (2026-07-28; listening first and listing after, a change between the two is
   * not lost). A failure costs a warning, not the connection: the stream is tried again in the background.
   */
  async restore(link: Link): Promise<void> {
    if (link.modern) {
      const { error } = await this.#relisten(link);
      if (error !== undefined && !link.closed) this.#retry(link, 1);
      return;
    }
    const timeout = this.#host.spec.connectTimeoutMs;
    await Promise.all(
      [...this.#uris].map((uri) =>
        link.client.subscribeResource({ uri }, { timeout }).catch((error: unknown) => {
          if (!link.closed) this.#host.log("warning", `could not subscribe to ${uri} again: ${messageOf(error)}`);
        }),
      ),
    );
  }

  /** Legacy era: the server accepted `resources/subscribe` for `uri`. */
  subscribed(uri: string): void {
    this.#change(uri, true);
  }

  /** An unsubscribe was asked for: from now on updates of `uri` are dropped, whatever the server says. */
  unsubscribed(uri: string): void {
    this.#change(uri, false);
  }

  /**
   * 2026-07-28: subscribes to or unsubscribes from `uri` by listening again with the new set. Resolves
   * with nothing once a stream that carries the change is open, or with why not (a subscribe that failed
   * is taken back).
   */
  async relistenFor(link: Link, uri: string, subscribe: boolean): Promise<unknown> {
    this.#change(uri, subscribe);
    const { error, honored } = await this.#relisten(link);
    if (subscribe && error === undefined && honored?.resourceSubscriptions && !honored.resourceSubscriptions.includes(uri)) {
      this.#change(uri, false);
      return new Error(`the server does not honour a subscription to ${uri}`);
    }
    if (subscribe && error !== undefined) this.#change(uri, false);
    return error;
  }

  #change(uri: string, subscribe: boolean): void {
    if (subscribe === this.#uris.has(uri)) return;
    if (subscribe) this.#uris.add(uri);
    else this.#uris.delete(uri);
    this.#generation++;
  }

  /** What the stream is to bring: list_changed of what the server can change, and updates of the set. */
  #filter(link: Link): SubscriptionFilter {
    const caps = link.client.getServerCapabilities() ?? {};
    const filter: SubscriptionFilter = {};
    if (caps.tools?.listChanged) filter.toolsListChanged = true;
    if (caps.resources?.listChanged) filter.resourcesListChanged = true;
    if (caps.prompts?.listChanged) filter.promptsListChanged = true;
    if (this.#uris.size > 0) filter.resourceSubscriptions = [...this.#uris];
    return filter;
  }

  /** A listen that carries the set as it is now: the one being opened if it does, else a new one after it. */
  async #relisten(link: Link): Promise<Listened> {
    const wanted = this.#generation;
    for (;;) {
      const opening = this.#opening;
      if (opening) {
        const done = await opening;
        if (done.generation >= wanted) return done;
        continue;
      }
      this.#opening = this.#open(link).finally(() => (this.#opening = undefined));
    }
  }

  /**
   * Opens one stream with the current set and, once the server acknowledged it, makes it the link's
   * (closing the one before). While the link lives, a stream that ends (the server dropped it, or ended
   * it on its way down: a stateless link outlives a server restart) is listened to again, and every list
   * listed again, since what changed meanwhile is not known.
   */
  async #open(link: Link): Promise<Listened> {
    const generation = this.#generation;
    if (link.closed || link !== this.#host.current()) return { generation, error: new Error("connection lost") };
    const filter = this.#filter(link);
    if (Object.keys(filter).length === 0) {
      // Nothing to listen for any more (the last URI went, and nothing of the server can change).
      const old = link.listening;
      link.listening = undefined;
      void old?.close().catch(() => {});
      return { generation };
    }
    let subscription: McpSubscription;
    try {
      subscription = await link.client.listen(filter, { timeout: this.#host.spec.connectTimeoutMs });
    } catch (error) {
      return { generation, error };
    }
    if (link.closed || link !== this.#host.current()) {
      void subscription.close().catch(() => {});
      return { generation, error: new Error("connection lost") };
    }
    const old = link.listening;
    link.listening = subscription;
    void old?.close().catch(() => {});
    const opened = Date.now();
    void subscription.closed.then((why) => {
      // Closed by us (replaced, or the link closing), or a stream that is no longer the link's.
      if (why === "local" || link.listening !== subscription || link.closed || link !== this.#host.current()) return;
      link.listening = undefined;
      this.#retry(link, Date.now() - opened >= LISTEN_STABLE_MS ? 0 : 1);
    });
    return { generation, honored: subscription.honoredFilter };
  }

  /**
   * Listens again after a pause, then lists everything again. A stream that ends soon after it opened, or a listen that fails, waits
   * longer each time, up to the slow probe interval; never a loop.
   */
  #retry(link: Link, attempt: number): void {
    const delay = attempt === 0 ? LISTEN_AGAIN_MS : Math.min(this.#host.spec.reconnect.probeIntervalMs, backoffDelay(attempt, LISTEN_AGAIN_MS, LISTEN_MAX_DELAY_MS));
    setTimeout(() => {
      if (link.closed || link !== this.#host.current() || link.listening) return;
      void this.#relisten(link).then(({ error }) => {
        // What changed while nobody listened is not known.
        if (error === undefined) this.#host.listings.refreshAll(link);
        else if (!link.closed) {
          this.#retry(link, attempt + 1);
        }
      });
    }, delay).unref();
  }
}

/** Pause before listening again after the stream ended (2026-07-28). */
const LISTEN_AGAIN_MS = 1_000;
/** A listen stream open this long was a good one: the next pause starts from LISTEN_AGAIN_MS again. */
const LISTEN_STABLE_MS = 30_000;
/** Cap of the backoff between listens that failed or ended early (and never beyond reconnect.probeIntervalMs). */
const LISTEN_MAX_DELAY_MS = 30_000;

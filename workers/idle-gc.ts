/**
 * Gives back the memory a connection grew into while it connected, once it is quiet (issue 19, idle RSS).
 *
 * Connecting leaves a worker's heap with the garbage of loading the SDK, the handshake and the first listings,
 * and a full nursery. V8's memory reducer would shrink it, but it starts only after a full mark-compact, and a
 * worker whose connect got by on scavenges (most) keeps it all for as long as it lives, so idle connections
 * differed by ~4 MB at random. One memory-reducing collection after each connect evens them out at the low
 * figure (docs/performance.md, "Where an idle connection's RSS goes").
 *
 * A worker has no `gc()` (that needs `--expose-gc`), and `v8.setFlagsFromString` would change V8's flags for
 * the whole host. The inspector's `HeapProfiler.collectGarbage` is V8's `LowMemoryNotification()` (a full,
 * compacting, memory-reducing collection) on this thread's isolate only: a session on the worker's own
 * inspector, opened for the one call and closed after. Where Node was built without the inspector, nothing
 * happens.
 */

/** Quiet this long after a connect (no request in flight, none arrived) before collecting. */
export const IDLE_GC_MS = 5_000;

export class IdleCollector {
  readonly #busy: () => boolean;
  readonly #delayMs: number;
  readonly #collect: () => Promise<void>;
  #timer: NodeJS.Timeout | undefined;
  /** Request batches that arrived: a change between two checks means the connection was not quiet. */
  #batches = 0;
  #seen = 0;

  /** `busy`: whether any request is in flight. `delayMs` and `collect` are for tests. */
  constructor(busy: () => boolean, delayMs = IDLE_GC_MS, collect = collectGarbage) {
    this.#busy = busy;
    this.#delayMs = delayMs;
    this.#collect = collect;
  }

  /** A batch of requests arrived. */
  touch(): void {
    this.#batches++;
  }

  /** The connection is ready: collect once, after `delayMs` without requests. */
  arm(): void {
    this.stop();
    this.#seen = this.#batches;
    this.#timer = setTimeout(this.#check, this.#delayMs);
    this.#timer.unref();
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  readonly #check = (): void => {
    this.#timer = undefined;
    if (this.#busy() || this.#seen !== this.#batches) return this.arm();
    void this.#collect();
  };
}

/** One memory-reducing full collection of this thread's heap, through its own inspector; never rejects. */
export async function collectGarbage(): Promise<void> {
  try {
    const { Session } = await import("node:inspector");
    const session = new Session();
    session.connect();
    try {
      await new Promise<void>((resolve, reject) => session.post("HeapProfiler.collectGarbage", (error) => (error ? reject(error) : resolve())));
    } finally {
      session.disconnect();
    }
  } catch {
    // No inspector in this build of Node: V8's own memory reducer is all there is.
  }
}

/**
 * Admission: what the pool lets in and counts. Requests (in flight, queued, totals), worker slots
 * (`limits.maxWorkers`: groups that need a connection wait here, FIFO, when every slot is taken), and
 * eviction of idle session connections to free a slot for a group that waits.
 */
import type { Call, Ledger } from "./call.js";
import type { PoolConfig } from "./config.js";
import type { Connection } from "./connection.js";
import type { ServerGroup } from "./server-group.js";

export class Admission implements Ledger {
  readonly maxInFlightPerConnection: number;
  readonly acquireTimeoutMs: number;
  readonly maxQueue: number;
  readonly maxWorkers: number;
  /** Calls waiting in all groups together (bounded by maxQueue). */
  queued = 0;
  readonly counts = { total: 0, ok: 0, failed: 0, inFlight: 0, serverCrashes: 0, workerCrashes: 0 };
  closing = false;

  readonly #minIdleBeforeEvictionMs: number;
  /** Every group holding connections (shared, discovery, sessions'), for eviction. */
  readonly #groups: () => Iterable<ServerGroup>;
  /** Groups waiting for a worker slot, FIFO. */
  readonly #slotQueue: ServerGroup[] = [];
  #slots = 0;
  #drained: (() => void) | undefined;

  constructor(limits: PoolConfig["limits"], groups: () => Iterable<ServerGroup>) {
    this.maxInFlightPerConnection = limits.maxInFlightPerConnection;
    this.acquireTimeoutMs = limits.acquireTimeoutMs;
    this.maxQueue = limits.maxQueue;
    this.maxWorkers = limits.maxWorkers;
    this.#minIdleBeforeEvictionMs = limits.minIdleBeforeEvictionMs;
    this.#groups = groups;
  }

  get slots(): number {
    return this.#slots;
  }

  get slotsWanted(): number {
    return this.#slotQueue.length;
  }

  /** A call was let in: counted until it settles. */
  admitted(call: Call): void {
    this.counts.total++;
    this.counts.inFlight++;
    if (call.session) {
      call.session.active++;
      call.session.lastUsed = Date.now();
    }
  }

  finished(call: Call, ok: boolean): void {
    if (ok) this.counts.ok++;
    else this.counts.failed++;
    this.counts.inFlight--;
    if (call.session) {
      call.session.active--;
      call.session.lastUsed = Date.now();
    }
    if (this.counts.inFlight === 0) this.#drained?.();
  }

  /** Resolves once no call is in flight, or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    if (this.counts.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Takes a worker slot now, or queues the group for the next free one (returns false). */
  takeSlot(group: ServerGroup): boolean {
    if (this.#slots < this.maxWorkers) {
      this.#slots++;
      return true;
    }
    this.#slotQueue.push(group);
    this.evictIdleSessionConnection();
    return false;
  }

  releaseSlot(): void {
    this.#slots--;
    while (this.#slotQueue.length > 0 && this.#slots < this.maxWorkers) {
      const group = this.#slotQueue.shift()!;
      this.#slots++;
      group.slotGranted();
    }
  }

  /** Withdraws a group's request for a worker slot (its waiting calls are gone). */
  withdrawSlot(group: ServerGroup): void {
    const i = this.#slotQueue.indexOf(group);
    if (i !== -1) this.#slotQueue.splice(i, 1);
  }

  /** Nothing waits for a slot any more (the pool is closing). */
  clearSlotQueue(): void {
    this.#slotQueue.length = 0;
  }

  /** A request finished on `conn`: at the worker cap, a session connection that just went idle is what a queued group needs. */
  connectionIdle(conn: Connection): void {
    if (this.#slotQueue.length > 0 && conn.sessionId !== undefined && conn.inFlight === 0) this.evictIdleSessionConnection();
  }

  /**
   * At the worker cap: close the least recently used session connection idle for at least
   * `minIdleBeforeEvictionMs` (and holding no subscription) to make room, unless connections already
   * closing will free a worker for every group waiting for one. The pool's sweep tries again while groups wait.
   */
  evictIdleSessionConnection(): void {
    let victim: Connection | undefined;
    let freeing = 0;
    const idleSince = Date.now() - this.#minIdleBeforeEvictionMs;
    for (const group of this.#groups()) {
      for (const conn of group.connections) {
        if (conn.closing) {
          freeing++;
          continue;
        }
        if (group.sessionId === undefined || conn.inFlight > 0 || group.waiting > 0 || conn.lastUsed > idleSince || conn.subscriptions.size > 0) continue;
        if (!victim || conn.lastUsed < victim.lastUsed) victim = conn;
      }
    }
    if (victim && freeing < this.#slotQueue.length) void victim.close();
  }
}

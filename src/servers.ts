/**
 * What the pool keeps per configured server: its shared group (the replicas), the short-lived
 * connection that lists a lazy server's catalogs at start (discovery), and what its connections last
 * found out about it (its era, what it said of itself, why its last connect failed).
 */
import { backoffDelay } from "./common/backoff.js";
import type { ServerConfig } from "./config.js";
import type { ConnectionState, ServerInfo, Verdict, WireError } from "./common/protocol.js";
import { ServerGroup, type GroupHost } from "./server-group.js";

export class Servers {
  readonly list: readonly ServerConfig[];
  /** Per server: what it said of itself at the last handshake of any of its connections. */
  readonly infos = new Map<string, ServerInfo>();
  /** Per server: its era as its connections last found it, handed to every new connection (see Verdict). */
  readonly verdicts = new Map<string, Verdict>();
  /** Per server: why its last connect attempt failed, until one of its connections is ready. */
  readonly connectErrors = new Map<string, { error: WireError; cause: unknown }>();
  readonly #shared = new Map<string, ServerGroup>();
  /** Session-scoped (and min-0) servers: a short-lived connection that lists their catalogs. */
  readonly #discovery = new Map<string, ServerGroup>();
  readonly #discoveryState = new Map<string, ConnectionState>();
  /** Discoveries waiting (for a slot, a connect, their backoff): woken when the pool closes. */
  readonly #discoveryWakes = new Set<() => void>();
  readonly #host: GroupHost;
  /** Whether `server` has listed its catalogs in the pool's view (then discovery has nothing left to do). */
  readonly #listed: (server: string) => boolean;
  #closing = false;

  constructor(list: readonly ServerConfig[], host: GroupHost, listed: (server: string) => boolean) {
    this.list = list;
    this.#host = host;
    this.#listed = listed;
  }

  /**
   * Opens the replicas of shared servers and discovers the others. Resolves once every server is ready or
   * has failed its first attempt.
   */
  start(): Promise<void> {
    const firsts: Promise<void>[] = [];
    for (const server of this.list) {
      if (server.scope === "shared") this.#shared.set(server.name, new ServerGroup(server, this.#host));
      if (server.scope === "shared" && server.connections.min > 0) {
        const group = this.#shared.get(server.name)!;
        group.fill();
        firsts.push(group.filled());
      } else {
        firsts.push(this.#discover(server));
      }
    }
    return Promise.all(firsts).then(() => {});
  }

  /** The shared group of a shared server. */
  shared(server: string): ServerGroup | undefined {
    return this.#shared.get(server);
  }

  /** The groups that hold `server`'s pool-wide connections (shared replicas, discovery). */
  *groupsOf(server: string): Iterable<ServerGroup> {
    const shared = this.#shared.get(server);
    if (shared) yield shared;
    const discovery = this.#discovery.get(server);
    if (discovery) yield discovery;
  }

  *groups(): Iterable<ServerGroup> {
    yield* this.#shared.values();
    yield* this.#discovery.values();
  }

  discoveryState(server: string): ConnectionState | undefined {
    return this.#discoveryState.get(server);
  }

  /** Closes surplus replicas idle for longer than `connections.idleTimeoutMs`. */
  sweep(now: number): void {
    for (const group of this.#shared.values()) {
      const { min, idleTimeoutMs } = group.config.connections;
      let surplus = group.connections.filter((c) => !c.closing).length - min;
      for (const c of [...group.connections].reverse()) {
        if (surplus <= 0) break;
        if (!c.closing && c.inFlight === 0 && c.subscriptions.size === 0 && group.waiting === 0 && now - c.lastUsed >= idleTimeoutMs) {
          void c.close();
          surplus--;
        }
      }
    }
  }

  /** Stops discovering; the groups are the pool's to close. */
  close(): void {
    this.#closing = true;
    for (const wake of this.#discoveryWakes) wake();
  }

  /**
   * Lists the catalogs of a server that keeps no connection open (session-scoped, or shared with
   * `connections.min` 0) through a temporary connection with the server's own headers. Resolves after the
   * first attempt, ready or failed; a failed one is retried in the background with the server's reconnect
   * backoff, then its probes, until it has listed (by this or any connection of the server) or the pool
   * closes. Waiting for a worker slot is not an attempt and has no deadline: at the worker cap discoveries
   * take turns, each freeing its slot when done; only the connect itself has connectTimeoutMs.
   */
  #discover(server: ServerConfig): Promise<void> {
    let attempted!: () => void;
    const first = new Promise<void>((resolve) => (attempted = resolve));
    this.#discoveryState.set(server.name, "connecting");
    void (async () => {
      const { maxAttempts, initialDelayMs, maxDelayMs, probeIntervalMs } = server.reconnect;
      for (let failures = 0; ; ) {
        const ready = await this.#discoverOnce(server, attempted);
        attempted();
        if (ready || this.#closing || this.#listed(server.name)) return;
        failures++;
        const probing = failures > maxAttempts;
        this.#discoveryState.set(server.name, probing ? "failed" : "reconnecting");
        // As a connection's host does: full-jitter exponential backoff for maxAttempts, then probes.
        const delay = probing ? probeIntervalMs : backoffDelay(failures, initialDelayMs, maxDelayMs);
        let timer!: NodeJS.Timeout;
        await this.#wait(new Promise<void>((resolve) => (timer = setTimeout(resolve, delay).unref())));
        clearTimeout(timer);
        // Listed meanwhile by a connection of its own (a session's, an on-demand replica): nothing left to do.
        if (this.#closing || this.#listed(server.name)) return;
      }
    })();
    return first;
  }

  /**
   * One discovery attempt: a worker slot (however long that takes), then one connect. Whether it listed.
   * A slot wait longer than connectTimeoutMs calls `waitedLong`: createPool() does not wait for it (at the
   * worker cap, many lazy servers would otherwise hold it for turns of connectTimeoutMs each).
   */
  async #discoverOnce(server: ServerConfig, waitedLong: () => void): Promise<boolean> {
    if (this.#closing) return false;
    const group = new ServerGroup({ ...server, connections: { ...server.connections, min: 1, max: 1 } }, this.#host);
    this.#discovery.set(server.name, group);
    group.fill();
    if (!group.connections[0]) {
      const long = setTimeout(waitedLong, server.connectTimeoutMs);
      long.unref();
      await this.#wait(group.opened());
      clearTimeout(long);
    }
    const conn = group.connections[0];
    if (conn) await this.#wait(conn.settled);
    const ready = conn?.state === "ready";
    if (ready) this.#discoveryState.set(server.name, "ready");
    if (this.#discovery.get(server.name) === group) this.#discovery.delete(server.name);
    void group.close("CONNECTION_LOST");
    return ready;
  }

  /** Waits for `promise`, or for the pool to close, whichever comes first. */
  #wait(promise: Promise<void>): Promise<void> {
    if (this.#closing) return Promise.resolve();
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    this.#discoveryWakes.add(wake);
    return Promise.race([promise, woken]).finally(() => this.#discoveryWakes.delete(wake));
  }
}

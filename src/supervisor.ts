/**
 * Owns the worker threads (a piscina pool, one long-lived task per connection) and the server
 * process groups those workers started, so that a dead worker's servers can be reaped from here.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { Piscina } from "piscina";
import { groupGone, GROUP_EXIT_MS, signalOurGroup, startTimeOf } from "./common/process-group.js";
import { startFailure, type ConnectionSpec, type HostTask } from "./common/protocol.js";

/**
 * What each worker loads first: a small entry that launches a stdio connection's server, then loads the worker
 * side (one bundled module) while the server starts. Both made by `npm run build` (scripts/bundle-worker.mjs).
 */
const HOST_FILE = new URL("../workers/host-entry.bundle.js", import.meta.url).href;
/** Young-generation cap of each worker (see the constructor). */
const WORKER_YOUNG_GEN_MB = 16;

/** The `resourceLimits` of every worker thread (the benchmark gives its bare workers the same). */
export function workerResourceLimits(workerHeapMb: number): { maxOldGenerationSizeMb: number; maxYoungGenerationSizeMb: number } {
  return { maxOldGenerationSizeMb: workerHeapMb, maxYoungGenerationSizeMb: WORKER_YOUNG_GEN_MB };
}
/** How long a dead worker's server gets between SIGTERM and SIGKILL. */
const REAP_GRACE_MS = 500;
/** A worker gets this long, or the server's connectTimeoutMs if longer, to start its host (see start()). */
const HOST_START_MIN_MS = 10_000;

export interface HostHandle {
  /** The main thread's end of the connection's data plane (see HostTask). */
  data: MessagePort;
  /** The main thread's end of the connection's control plane (comlink). */
  control: MessagePort;
  /** Settles when the host task ends: resolves on a clean close, rejects when the worker died. */
  done: Promise<void>;
  /** Terminates the worker running this host (piscina aborts a running task by terminating its thread). */
  terminate(): void;
  /** The host has spoken: it started. Call when its `open()` returns. */
  heard(): void;
}

export class Supervisor {
  readonly #piscina: Piscina;
  /**
   * Process groups of servers alive right now, so that nothing outlives the pool or the host, each with
   * its leader's start time: a group is signalled only while it is still ours (see isOurGroup).
   */
  readonly #groups = new Map<number, string | undefined>();
  /** Hosts not heard from yet, by the function that gives up on each. */
  readonly #starting = new Set<(error: Error) => void>();
  readonly #onExit = () => {
    for (const pid of this.#groups.keys()) this.#signal(pid, "SIGKILL");
  };

  /** See `limits.workerHeartbeatMs`; read by each connection. */
  readonly heartbeatMs: number;

  constructor(maxWorkers: number, workerHeapMb: number, heartbeatMs = 0) {
    this.heartbeatMs = heartbeatMs;
    this.#piscina = new Piscina({
      filename: HOST_FILE,
      minThreads: 0,
      maxThreads: maxWorkers,
      concurrentTasksPerWorker: 1,
      // 'sync' parks finished workers in Atomics.wait and hangs later tasks (see DESIGN.md).
      atomics: "disabled",
      idleTimeout: 1_000,
      // The young generation: 16 MB, V8's default here. It was capped at 2 MB while an idle worker kept its
      // whole nursery resident; since each worker makes one memory-reducing collection once its connection is
      // quiet (workers/idle-gc.ts), an idle connection costs the same either way (memory-probe pool-4 4 30000,
      // alternating: 19.5 / 18.8 MB at 2 MB, 18.9 / 19.2 MB at 16), while at 2 MB large calls' arguments and
      // results were promoted and collected again: host CPU per 100 KB call each way (thread-cpu.js pool-1
      // 102400 1500 16 1 1, alternating) 2,068–2,269 µs at 2 MB, 1,584–1,675 µs at 16, the plain client 1,408.
      resourceLimits: workerResourceLimits(workerHeapMb),
    });
    // piscina reports a worker that dies outside a task here, and that is how a worker that failed to
    // load its module ends: the task it was started for then stays queued for good. piscina does not say
    // which task that was, so every host not heard from yet gives up on its start; one that was merely
    // slow is started again (such failures are rare, and mostly systematic: a broken install).
    this.#piscina.on("error", (error: unknown) => {
      const reason = startFailure(error);
      for (const giveUp of [...this.#starting]) giveUp(reason);
    });
    process.on("exit", this.#onExit);
  }

  /**
   * Starts a host in a worker. `onStartFailed` is called, at most once, if the host is not heard from
   * in time (see HOST_START_MIN_MS) or its worker fails to start: piscina alone would leave the task
   * queued forever, and the connection waiting for it. The caller then terminates the handle.
   */
  start(spec: ConnectionSpec, onStartFailed: (error: Error) => void): HostHandle {
    const data = new MessageChannel();
    const control = new MessageChannel();
    const abort = new AbortController();
    const task: HostTask = { spec, data: data.port2, control: control.port2 };
    const done = this.#piscina.run(task, { transferList: [data.port2, control.port2] as never, signal: abort.signal }) as Promise<void>;
    done.catch(() => {}); // observed by the connection; never unhandled
    const startMs = Math.max(HOST_START_MIN_MS, spec.connectTimeoutMs);
    let watching = true;
    const giveUp = (error: Error): void => {
      // Port messages already queued are delivered after timers and piscina's events in this turn of the
      // event loop: a host that has spoken by then is heard, not given up on.
      setImmediate(() => {
        if (!watching) return;
        stopWatching();
        onStartFailed(error);
      });
    };
    const stopWatching = (): void => {
      watching = false;
      clearTimeout(timer);
      this.#starting.delete(giveUp);
    };
    const timer = setTimeout(giveUp, startMs, new Error(`worker thread did not start its connection host within ${startMs} ms`));
    timer.unref();
    this.#starting.add(giveUp);
    done.then(stopWatching, stopWatching);
    return {
      data: data.port1,
      control: control.port1,
      done,
      terminate: () => {
        stopWatching();
        abort.abort();
      },
      heard: stopWatching,
    };
  }

  /**
   * A server's process group, as its worker reported it: `startTime` is its leader's, read by the worker
   * right after the spawn (read here if not given). Each group is forgotten by name when its server is
   * gone (forget, reap, release): nothing here scans the others, so a mass reconnect stays linear.
   */
  track(pid: number, startTime: string | undefined = startTimeOf(pid)): void {
    this.#groups.set(pid, startTime);
  }

  /** A group its own host ended (it reopened its server, which reports a new group): no longer ours to end. */
  forget(pid: number): void {
    this.#groups.delete(pid);
  }

  /**
   * Ends a server's whole process group: SIGTERM, up to REAP_GRACE_MS for it to go, then SIGKILL.
   * Resolves once no process of the group runs (at most GROUP_EXIT_MS after the SIGKILL).
   */
  async reap(pid: number): Promise<void> {
    if (this.#signal(pid, "SIGTERM")) {
      await groupGone(pid, REAP_GRACE_MS);
      if (this.#signal(pid, "SIGKILL")) await groupGone(pid, GROUP_EXIT_MS);
    }
    this.#groups.delete(pid);
  }

  /** The group ended by its own worker's teardown; a last SIGKILL covers stragglers. */
  release(pid: number): void {
    this.#signal(pid, "SIGKILL");
    this.#groups.delete(pid);
  }

  /** Ends every group still known (a dead worker's, still being reaped), then the workers. */
  async destroy(): Promise<void> {
    const groups = [...this.#groups.keys()].filter((pid) => this.#signal(pid, "SIGKILL"));
    this.#groups.clear();
    await Promise.all(groups.map((pid) => groupGone(pid, GROUP_EXIT_MS)));
    await this.#piscina.destroy();
    process.off("exit", this.#onExit);
  }

  /** Signals a known group only while it is still ours (see signalOurGroup). Returns whether the signal was sent. */
  #signal(pid: number, signal: NodeJS.Signals): boolean {
    return this.#groups.has(pid) && signalOurGroup(pid, this.#groups.get(pid), signal);
  }
}

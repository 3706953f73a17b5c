/**
 * What a pool's worker thread loads first (piscina's `filename`, see src/supervisor.ts): a few kilobytes that,
 * given a stdio connection's task, launch its server and only then load the connection host, the worker
 * bundle with the MCP SDK. The server's start (a process of its own, on another core) and the bundle's
 * evaluation (this thread) then overlap: connecting costs the longer of the two, not their sum.
 *
 * The host's first attempt adopts the launched server (stdio-transport.ts, `adopt`). Until the host reports it
 * on the control plane, the main thread knows it from the `spawned` message posted here on the data plane, so
 * that a worker that dies or is terminated while the host loads leaves nothing behind (the main thread
 * reaps the groups its dead workers started). A host that fails to load ends the server itself.
 *
 * Built into dist/workers/host-entry.bundle.js on its own, with the SDK's modules taken as free of side
 * effects so that only `getDefaultEnvironment` comes along (scripts/bundle-worker.mjs).
 */
import { startFailure, type HostTask, type ToMain } from "../src/common/protocol.js";
import type { EntryTask } from "./connection-host.js";
import { lowerThreadPriority } from "./priority.js";
import { commandOf, discardServer, launchServer } from "./server-process.js";

/** The connection host, next to this file once built; a variable so that neither tsc nor esbuild follows it. */
const HOST_MODULE = "./connection-host.bundle.js";

export default async function hostEntry(task: HostTask): Promise<void> {
  // Before the launch: the server inherits this thread's niceness (the host sets it again, for hosts started without this entry).
  lowerThreadPriority(task.spec.nice);
  const early = task.spec.transport === "stdio" ? launchServer(commandOf(task.spec)) : undefined;
  if (early) {
    early.spawned.then(
      (startTime) => {
        if (early.child.pid !== undefined) task.data.postMessage({ op: "spawned", pid: early.child.pid, startTime } satisfies ToMain);
      },
      () => {}, // the host's first attempt reports the failure as its own
    );
  }
  let host: (task: EntryTask) => Promise<void>;
  try {
    host = ((await import(HOST_MODULE)) as typeof import("./connection-host.js")).default;
  } catch (error) {
    if (early) discardServer(early);
    // A module that failed to evaluate stays failed in this thread (its module map keeps the error), so the
    // thread dies of it, with this task: piscina then fails the task with this error and never gives the thread
    // another (a rejected task would leave it to take the next host, and fail that too).
    const failure = startFailure(error);
    setImmediate(() => {
      throw failure;
    });
    return new Promise<never>(() => {});
  }
  return host({ ...task, early });
}

/**
 * Starting a stdio server: the one place a server process is spawned. The stdio transport launches one on
 * each (re)connect; the worker's entry (host-entry.ts) launches the first before the host's code has loaded,
 * and the transport of the first attempt adopts it.
 *
 * Nothing here may import the SDK's runtime beyond `getDefaultEnvironment`: this module is part of the entry's
 * small bundle, whose point is to spawn the server before the big one is evaluated (scripts/bundle-worker.mjs).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { getDefaultEnvironment } from "@modelcontextprotocol/client/stdio";
import { signalOurGroup, startTimeOf } from "../src/common/process-group.js";
import type { ConnectionSpec } from "../src/common/protocol.js";
import { lowerGroupPriority } from "./priority.js";

export interface ServerCommand {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string;
  stderr: "inherit" | "ignore";
  /** Niceness of the server's scheduling group (see priority.ts); 0 leaves it alone. */
  nice?: number;
}

/** The command of a stdio connection's server. */
export function commandOf(spec: ConnectionSpec): ServerCommand {
  return { command: spec.command!, args: spec.args, env: spec.env, cwd: spec.cwd, stderr: spec.stderr, nice: spec.nice };
}

/**
 * A server process as launched. Its listeners for the spawn, a failure to spawn and the final close are
 * attached at once, so that whoever takes it later (the transport, a moment or a module load later) misses
 * none of them; its output waits in the pipe until then.
 */
export interface Launched {
  readonly child: ChildProcess;
  /** Its leader's start time, read right after the spawn (see process-group.ts startTimeOf). */
  readonly startTime: string | undefined;
  /** Resolves with the leader's start time (see process-group.ts) once it runs; rejects if it could not start. */
  readonly spawned: Promise<string | undefined>;
  /** Resolves when the process has exited and its pipes have closed. */
  readonly closed: Promise<void>;
}

/** Spawns `cmd` as the leader of its own process group, so that teardown reaches its grandchildren too. */
export function launchServer(cmd: ServerCommand): Launched {
  const child = spawn(cmd.command, cmd.args, {
    env: { ...getDefaultEnvironment(), ...cmd.env },
    cwd: cmd.cwd,
    stdio: ["pipe", "pipe", cmd.stderr],
    detached: true,
    windowsHide: true,
  });
  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));
  // The group exists once spawn() returns with a pid: read its leader's start time now, so that it can be ended
  // at once, even before 'spawn' is emitted (discardServer).
  const startTime = child.pid === undefined ? undefined : startTimeOf(child.pid);
  const spawned = new Promise<string | undefined>((resolve, reject) => {
    // Kept after the spawn: an 'error' with no listener would throw, and the one that matters after it is
    // the transport's, which may not be attached yet (it settles nothing more here).
    child.on("error", reject);
    child.once("spawn", () => {
      if (child.pid !== undefined) lowerGroupPriority(child.pid, cmd.nice ?? 0);
      resolve(startTime);
    });
  });
  spawned.catch(() => {}); // a launch nobody took: its failure is nobody's to report
  return { child, startTime, spawned, closed };
}

/** Ends a launched server nobody took, with whatever it started, now: SIGKILL to its group, if it is still ours. */
export function discardServer(launched: Launched): void {
  if (launched.child.pid !== undefined) signalOurGroup(launched.child.pid, launched.startTime, "SIGKILL");
}

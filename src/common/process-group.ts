/**
 * Process groups of stdio servers, from either side: the worker that spawned a server ends its group
 * on close, the main thread ends the group a dead worker left behind. Each server leads its own group,
 * so that a signal to the group reaches the grandchildren it started too.
 */
import { readdirSync, readFileSync } from "node:fs";

/** How long a SIGKILLed group's last processes get to be gone before we stop waiting. */
export const GROUP_EXIT_MS = 1_000;

/** Signals a whole process group; a group that is already gone is not an error. Returns whether it existed. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * The start time of process `pid` (field 22 of /proc/<pid>/stat, clock ticks since boot), which tells a
 * process from a later one that got the same pid. Undefined when there is no such process, or no procfs.
 */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "pid (comm) ", from field 3 (state): starttime is field 22.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether group `pgid` is still the one whose leader had start time `startTime` when the group was first
 * seen (undefined: unknown, as when the leader had already gone then). A pid is reused by an unrelated
 * process once its old process and every member of its group are gone (pid_max can be 32,768), so:
 * - a process with that pid runs: ours only if it started when ours did;
 * - none does: only members of the group we saw can still hold that group id (Linux keeps the id
 *   allocated while any process uses it), so it is ours, or empty.
 * Without procfs there is nothing to compare, and a group is taken as ours.
 */
export function isOurGroup(pgid: number, startTime: string | undefined): boolean {
  const now = startTimeOf(pgid);
  return now === undefined || now === startTime;
}

/**
 * Signals group `pgid` only while it is still the one recorded with `startTime` (see isOurGroup): once its
 * leader has been reaped and nothing of the group is left, the pid may name an unrelated process.
 * Returns whether the signal was sent.
 */
export function signalOurGroup(pgid: number, startTime: string | undefined, signal: NodeJS.Signals): boolean {
  return isOurGroup(pgid, startTime) && signalGroup(pgid, signal);
}

/**
 * Waits until no process of group `pgid` runs any more, or `ms` has passed. A signal is not a death:
 * on a busy machine a SIGKILLed process can still run for a moment. Zombies, which only wait to be
 * reaped by whoever adopted them, and dead tasks do not count.
 */
export async function groupGone(pgid: number, ms: number): Promise<void> {
  const until = Date.now() + ms;
  // Polls from 10 ms up to 100 ms apart: a scan of /proc is synchronous, and this runs on the main thread too.
  for (let step = 10; groupRuns(pgid) && Date.now() < until; step = Math.min(100, step * 2)) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(step, Math.max(1, until - Date.now()))));
  }
}

function groupRuns(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  // The group still has members; on Linux, see whether any of them is more than a zombie. The leader
  // (pid = pgid) first: while it runs, one small read answers. Only then every process's, to find the rest.
  if (runs(pgid, pgid)) return true;
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return true; // no procfs: members exist, assume they run
  }
  for (const entry of entries) {
    if (entry.charCodeAt(0) < 48 || entry.charCodeAt(0) > 57) continue;
    if (runs(Number(entry), pgid)) return true;
  }
  return false;
}

/** Whether process `pid` is a member of group `pgid` and more than a zombie. */
function runs(pid: number, pgid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // "pid (comm) S ppid pgrp ...": comm may hold spaces and parentheses, so split after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X";
  } catch {
    return false; // gone meanwhile
  }
}

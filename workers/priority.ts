/**
 * Runs this worker thread, and the servers it spawns, at a lower CPU priority than the host.
 *
 * On a busy machine the host's main thread, its worker and the server all want a core at once; at
 * equal priority the main thread waits its turn behind tool traffic, which is what the pool exists to
 * prevent. Linux keeps a nice value per thread (setpriority on a thread id) and a child forked from a
 * thread inherits that thread's value, so one call here covers the worker and its server processes.
 * Elsewhere (no /proc/thread-self) this does nothing.
 *
 * One catch: a stdio server is spawned as the leader of its own session (for process-group teardown),
 * and with autogroup scheduling (`/proc/sys/kernel/sched_autogroup_enabled`, on by default in many
 * distributions) a new session is a new scheduling group that competes with the whole host as an
 * equal, whatever its threads' nice values. `lowerGroupPriority` gives that group the same niceness.
 */
import { readlinkSync, writeFileSync } from "node:fs";
import { getPriority, setPriority } from "node:os";

/** Lowers this thread's priority to `nice` (0..19); never raises it. */
export function lowerThreadPriority(nice: number): void {
  if (nice <= 0) return;
  try {
    // "<pid>/task/<tid>"
    const tid = Number(readlinkSync("/proc/thread-self").split("/").pop());
    if (Number.isInteger(tid) && tid > 0 && getPriority(tid) < nice) setPriority(tid, nice);
  } catch {
    // no /proc/thread-self (not Linux), or not permitted: run at the priority we have
  }
}

/** Lowers the autogroup priority of a session leader's group to `nice`, where autogroup scheduling is on. */
export function lowerGroupPriority(pid: number, nice: number): void {
  if (nice <= 0) return;
  try {
    writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch {
    // no autogroup scheduling here, or the process is already gone
  }
}

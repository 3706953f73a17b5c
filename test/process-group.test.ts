/**
 * Process groups are signalled only while they are still ours (issue 12, item 3): a server's pid that
 * was reused by an unrelated process after the server ended must never be killed by the pool.
 * The reuse is simulated: a live process in its own group, recorded with the start time of an older one.
 */
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isOurGroup, startTimeOf } from "../src/common/process-group.js";
import { Supervisor } from "../src/supervisor.js";
import { isAlive, waitFor } from "./helpers/fixtures.js";

const procfs = existsSync("/proc/self/stat");
const SLEEP = ["/bin/sleep", "/usr/bin/sleep"].find((p) => existsSync(p)) ?? "sleep";

/** A `sleep 30` leading its own process group (as a server does), killed at teardown; `name` is its command name. */
function sleeper(t: ExecutionContext, name?: string): number {
  let command = "sleep";
  if (name !== undefined) {
    // The kernel names a process after the file it runs: a link named `name` to sleep.
    const dir = mkdtempSync(join(tmpdir(), "process-group-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    command = join(dir, name);
    symlinkSync(SLEEP, command);
  }
  const child = spawn(command, ["30"], { detached: true, stdio: "ignore" });
  const pid = child.pid!;
  t.teardown(() => {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      // gone already
    }
  });
  return pid;
}

test("isOurGroup tells the group it recorded from a process that got the same pid later", async (t) => {
  if (!procfs) return t.pass("no procfs: every group is taken as ours");
  // A command name with spaces and parentheses, as /proc/<pid>/stat writes it unescaped.
  const pid = sleeper(t, "a) b (c");
  await waitFor(() => commOf(pid) === "a) b (c", 5_000);
  const start = startTimeOf(pid)!;
  t.regex(start, /^\d+$/);
  t.true(isOurGroup(pid, start), "the process recorded is ours");
  t.false(isOurGroup(pid, String(Number(start) - 1)), "a process that started at another time is not ours");
  t.false(isOurGroup(pid, undefined), "a process that appeared after the leader was seen gone is not ours");
  process.kill(-pid, "SIGKILL");
  await waitFor(() => !isAlive(pid), 5_000);
  await waitFor(() => startTimeOf(pid) === undefined, 5_000);
  t.true(isOurGroup(pid, start), "with no process of that pid, only the recorded group's members can hold the group id");
});

test("closing the supervisor leaves alone a process whose pid a server group of the pool once had", async (t) => {
  if (!procfs) return t.pass("no procfs: reuse cannot be told");
  const stranger = sleeper(t);
  const server = sleeper(t);
  await waitFor(() => startTimeOf(stranger) !== undefined && startTimeOf(server) !== undefined, 5_000);
  const supervisor = new Supervisor(1, 32);
  t.teardown(() => supervisor.destroy());
  // A server of the pool that still runs, as its worker reported it.
  supervisor.track(server, startTimeOf(server));
  // The pool saw a server with this pid long ago; an unrelated process got the pid since.
  supervisor.track(stranger, String(Number(startTimeOf(stranger)) - 100));
  await supervisor.destroy();
  t.false(isAlive(server), "the pool's own server group is ended");
  t.true(isAlive(stranger), "the process that reused a pid is not touched");
});

test("reaping a group whose pid now belongs to an unrelated process leaves that process alone", async (t) => {
  if (!procfs) return t.pass("no procfs: reuse cannot be told");
  const stranger = sleeper(t);
  await waitFor(() => startTimeOf(stranger) !== undefined, 5_000);
  const supervisor = new Supervisor(1, 32);
  t.teardown(() => supervisor.destroy());
  supervisor.track(stranger, String(Number(startTimeOf(stranger)) - 100));
  await supervisor.reap(stranger);
  supervisor.release(stranger);
  await supervisor.destroy();
  t.true(isAlive(stranger));
});

test("a group the supervisor was told to forget (its host replaced the server) is not its to end any more", async (t) => {
  const replaced = sleeper(t);
  const current = sleeper(t);
  await waitFor(() => startTimeOf(replaced) !== undefined && startTimeOf(current) !== undefined, 5_000);
  const supervisor = new Supervisor(1, 32);
  t.teardown(() => supervisor.destroy());
  supervisor.track(replaced, startTimeOf(replaced));
  supervisor.track(current, startTimeOf(current));
  supervisor.forget(replaced);
  await supervisor.destroy();
  t.false(isAlive(current), "the group still known is ended");
  t.true(isAlive(replaced), "the forgotten group is left to the host that ends it");
});

function commOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
  } catch {
    return undefined;
  }
}

/**
 * Helpers for tests that talk to the fixture MCP servers: test/fixtures/server.ts (legacy era, v1 SDK)
 * and test/fixtures/modern-server.ts (2026-07-28 era, v2 SDK), which serve the same tools
 * (test/fixtures/tools.ts) and the same resources, templates, prompts and completions
 * (test/fixtures/catalog.ts). A suite runs against both eras by looping over FIXTURE_ERAS.
 */
import type { ExecutionContext } from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Absolute path of the compiled fixture server (dist/test/fixtures/server.js): legacy era only. */
export const FIXTURE_SERVER: string = fileURLToPath(new URL("../fixtures/server.js", import.meta.url));

/**
 * Absolute path of the compiled 2026-07-28 fixture server (dist/test/fixtures/modern-server.js).
 * Modern-only by default; `--legacy serve` makes it answer legacy clients too.
 */
export const MODERN_FIXTURE_SERVER: string = fileURLToPath(new URL("../fixtures/modern-server.js", import.meta.url));

/** The protocol eras a fixture speaks: "legacy" (initialize handshake) and "modern" (2026-07-28 only). */
export const FIXTURE_ERAS = ["legacy", "modern"] as const;
export type FixtureEra = (typeof FIXTURE_ERAS)[number];

/**
 * The revision a pool (protocol "auto", the default) speaks with the fixture of `era`: what
 * `stats().servers[name].protocolVersion` says once connected. Era-parametrised suites check it, so a
 * test that meant to run in the 2026-07-28 era cannot silently pass in the legacy one.
 */
export const ERA_REVISION: Record<FixtureEra, string> = { legacy: "2025-11-25", modern: "2026-07-28" };

/**
 * Checks that every server of `pool` (or those named) speaks `era`'s revision. Structural, so this file
 * needs nothing of the pool.
 */
export function assertEra(
  t: ExecutionContext,
  pool: { stats(): { servers: Record<string, { protocolVersion?: string | undefined }> } },
  era: FixtureEra,
  servers?: string[],
): void {
  const all = pool.stats().servers;
  for (const name of servers ?? Object.keys(all)) t.is(all[name]?.protocolVersion, ERA_REVISION[era], `${name} speaks the ${era} era`);
}

/** The fixture server file for `era`. */
export function fixtureServer(era: FixtureEra = "legacy"): string {
  return era === "modern" ? MODERN_FIXTURE_SERVER : FIXTURE_SERVER;
}

/** How many tools the fixture server lists (with its default 12 filler tools): 28 named ones, then the fillers. */
export const FIXTURE_TOOL_COUNT = 40;

export interface StdioServerConfig {
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** A stdio server config that runs the fixture server of `era`. */
export function stdioServer(extraArgs: string[] = [], env?: Record<string, string>, era: FixtureEra = "legacy"): StdioServerConfig {
  const config: StdioServerConfig = { command: process.execPath, args: [fixtureServer(era), "stdio", ...extraArgs] };
  if (env) config.env = env;
  return config;
}

/** Fixture processes still running; SIGKILLed if the test process exits without close(). */
const liveFixtures = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  liveFixtures.add(child);
  child.once("exit", () => liveFixtures.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once("exit", () => {
      for (const c of liveFixtures) c.kill("SIGKILL");
    });
  }
}

export interface HttpFixture {
  url: string;
  pid: number;
  /** SIGTERM, then SIGKILL after 2 s; resolves once the process has exited. Idempotent. */
  close(): Promise<void>;
}

/**
 * Spawns the fixture server of `era` in http or sse mode and waits (at most 30 s) for its
 * `LISTENING <url>` line. `env` is merged over process.env (e.g. FIXTURE_EVENTS). SSE exists in the
 * legacy era only (the v2 server never serves it): asking for it with "modern" throws.
 */
export async function startHttpFixture(
  mode: "http" | "sse" = "http",
  extraArgs: string[] = [],
  env?: Record<string, string>,
  era: FixtureEra = "legacy",
): Promise<HttpFixture> {
  if (mode === "sse" && era === "modern") throw new Error("startHttpFixture: the modern fixture has no SSE mode (legacy SSE is legacy-era only)");
  const child = spawn(process.execPath, [fixtureServer(era), mode, ...extraArgs], {
    stdio: ["ignore", "pipe", "pipe"],
    env: env ? { ...process.env, ...env } : process.env,
  });
  track(child);
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 2000);
        await exited;
        clearTimeout(timer);
      }
    })();
    return closing;
  };

  const lines = createInterface({ input: child.stdout! });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${era} fixture server (${mode}) did not print LISTENING within 30000 ms; stderr: ${stderr}`)),
        30_000,
      );
      const done = (fn: () => void) => {
        clearTimeout(timer);
        fn();
      };
      lines.on("line", (line) => {
        const match = /^LISTENING (\S+)$/.exec(line.trim());
        if (match) done(() => resolve(match[1]!));
      });
      child.once("error", (error) => done(() => reject(error)));
      child.once("exit", (code, signal) =>
        done(() => reject(new Error(`${era} fixture server (${mode}) exited (code ${code}, signal ${signal}) before listening; stderr: ${stderr}`))),
      );
    });
    return { url, pid: child.pid!, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Format: "pid (comm) S ..."; comm may contain spaces or parentheses.
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z") return false;
  } catch {
    // No procfs (or the process vanished in between): trust kill(0).
  }
  return true;
}

/** Polls `predicate` every `stepMs` until it is true; throws after `timeoutMs`. */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  stepMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() >= deadline) throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** Parses a FIXTURE_EVENTS jsonl file ([] if it does not exist). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readEvents(file: string): any[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line));
}

/** A fresh, not yet existing path in the OS temp directory. */
export function tmpFile(prefix: string): string {
  return join(tmpdir(), `${prefix}-${process.pid}-${Date.now()}-${randomBytes(6).toString("hex")}`);
}

/** `promise`, or a rejection naming `what` once `ms` pass without an outcome: the bound for a single await. */
export async function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no outcome within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

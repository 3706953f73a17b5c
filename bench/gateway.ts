/**
 * The gateway scenario (issue 17): a downstream SDK client (the v1 `@modelcontextprotocol/sdk` Client over
 * Streamable HTTP, as most MCP clients are today) → the gateway (`serveGateway` over a one-replica pool) →
 * the legacy fixture over stdio; against the same client → a plain proxy written the usual way with the
 * SDK v2 (plain-proxy.ts: an SDK v2 server whose tool handlers call an SDK v2 Client on the same thread)
 * → the same fixture. Each runs in a child process of its own (gateway-host.ts), whose main thread's CPU
 * time is read from /proc (schedstat of the thread whose id is the process id) around each window.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { performance } from "node:perf_hooks";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { processCpuMs, RESULT_SIZES } from "./scenarios.js";
import { percentile } from "./stats.js";
import { CALL_TIMEOUT_MS } from "./subjects.js";

export const GATEWAY_SUBJECTS = ["plain-proxy", "gateway"] as const;
export type GatewaySubjectName = (typeof GATEWAY_SUBJECTS)[number];
/** The result sizes of the gateway scenario: `echo` (10 B) and `huge {bytes: 102400}`. */
export const GATEWAY_SIZES = ["10b", "100kb"] as const;
export type GatewaySize = (typeof GATEWAY_SIZES)[number];

const HOST = fileURLToPath(new URL("./gateway-host.js", import.meta.url));

export interface GatewaySubject {
  readonly name: GatewaySubjectName;
  /** The gateway's (or proxy's) process id: its main thread's id too. */
  readonly pid: number;
  call(size: GatewaySize): Promise<unknown>;
  close(): Promise<void>;
}

/** CPU time the main thread of process `pid` has run, in ns (its schedstat). NaN if unreadable. */
export function mainThreadCpuNsOf(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, "utf8").split(" ")[0]);
  } catch {
    return Number.NaN;
  }
}

/** Starts the host process of `name` and connects a downstream client to it. Bounded by `capMs`. */
export async function openGatewaySubject(name: GatewaySubjectName, capMs: number): Promise<GatewaySubject> {
  const child: ChildProcess = spawn(process.execPath, [HOST, name], { stdio: ["pipe", "pipe", "inherit"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stopChild = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  let client: Client | undefined;
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no URL within ${capMs} ms`)), capMs);
      child.once("exit", (code, signal) => reject(new Error(`${name}: host exited (${code ?? signal}) before serving`)));
      child.once("error", reject);
      createInterface({ input: child.stdout! }).once("line", (line) => {
        clearTimeout(timer);
        try {
          resolve((JSON.parse(line) as { url: string }).url);
        } catch {
          reject(new Error(`${name}: unreadable line ${JSON.stringify(line.slice(0, 200))}`));
        }
      });
    });
    const c = new Client({ name: "bench-downstream", version: "0.0.0" });
    client = c;
    // The transport hands one AbortSignal to every fetch, and Node's fetch lets go of its abort listener only
    // when the request is garbage-collected: thousands of calls in a window pile up listeners on that signal
    // (a MaxListenersExceededWarning per call past the limit, thousands of lines in a full run). Harmless, and
    // not the gateway's: it runs in its own process. No limit on that one signal.
    const fetchUnbounded = (input: string | URL, init?: RequestInit): Promise<Response> => {
      if (init?.signal) setMaxListeners(0, init.signal);
      return fetch(input, init);
    };
    await c.connect(new StreamableHTTPClientTransport(new URL(url), { fetch: fetchUnbounded }), { timeout: CALL_TIMEOUT_MS });
    const prefix = name === "gateway" ? "fixture__" : "";
    const calls: Record<GatewaySize, { name: string; arguments: Record<string, unknown> }> = {
      "10b": { name: `${prefix}echo`, arguments: { message: "0123456789" } },
      "100kb": { name: `${prefix}huge`, arguments: { bytes: RESULT_SIZES["100kb"] } },
    };
    return {
      name,
      pid: child.pid!,
      call: async (size) => {
        const result = await c.callTool(calls[size], undefined, { timeout: CALL_TIMEOUT_MS }).catch((error: unknown) => {
          // fetch's own message ("fetch failed") says nothing: the socket error is its cause.
          const cause = (error as { cause?: { code?: string; message?: string } }).cause;
          if (cause) throw new Error(`${(error as Error).message} (${cause.code ?? ""} ${cause.message ?? ""})`);
          throw error;
        });
        if (result.isError) throw new Error(`${name}: ${calls[size].name} answered isError: ${JSON.stringify(result.content).slice(0, 200)}`);
        return result;
      },
      close: async () => {
        await c.close().catch(() => {});
        await stopChild();
      },
    };
  } catch (error) {
    await client?.close().catch(() => {});
    await stopChild();
    throw error;
  }
}

export interface GatewayWindow {
  cps: number;
  /** µs of the host process's main thread per call. */
  mainCpu: number;
  /** µs of the whole host process (every thread: the pool's workers too) per call. */
  processCpu: number;
  p50: number;
  p99: number;
}

/** `calls` calls of one size with `inFlight` outstanding: throughput, the host's CPU per call, latency p50/p99 (ms). */
export async function gatewayWindow(subject: GatewaySubject, size: GatewaySize, calls: number, inFlight: number): Promise<GatewayWindow> {
  const latencies: number[] = [];
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < calls) {
      started++;
      const t0 = performance.now();
      await subject.call(size);
      latencies.push(performance.now() - t0);
    }
  };
  const main0 = mainThreadCpuNsOf(subject.pid);
  const proc0 = processCpuMs(subject.pid);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, calls) }, lane));
  const ms = performance.now() - t0;
  const main1 = mainThreadCpuNsOf(subject.pid);
  const proc1 = processCpuMs(subject.pid);
  return {
    cps: calls / (ms / 1000),
    mainCpu: (main1 - main0) / 1000 / calls,
    processCpu: ((proc1 - proc0) * 1000) / calls,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
  };
}

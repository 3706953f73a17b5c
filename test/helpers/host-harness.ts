/**
 * The main thread's side of one connection host, for tests that drive a real host in a real worker
 * (test/host-protocol.test.ts): a piscina pool over the worker bundle, one task per host, and both
 * planes of src/common/protocol.ts spoken by hand, without the pool. Records everything the host says
 * on the control plane; every wait is bounded.
 */
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { fileURLToPath } from "node:url";
import { expose, releaseProxy, transfer, wrap, type Remote } from "comlink";
import { Piscina } from "piscina";
import type {
  Catalogs,
  ConnectionSpec,
  HostControl,
  HostState,
  MainControl,
  Outcome,
  RequestMethod,
  ToHost,
  ToMain,
} from "../../src/common/protocol.js";
import { outcomeAt, RESULT_SLOTS } from "../../src/common/protocol.js";
import { waitFor, within } from "./fixtures.js";

const HOST_BUNDLE = fileURLToPath(new URL("../../workers/connection-host.bundle.js", import.meta.url));

/** A spec as the pool would make it, for a stdio `command` or an HTTP `url`. */
export function hostSpec(target: { command: string; args: string[]; env?: Record<string, string> } | { url: string }, extra: Partial<ConnectionSpec> = {}): ConnectionSpec {
  const base: ConnectionSpec = {
    connectionId: "test-1",
    server: "fixture",
    transport: "url" in target ? "http" : "stdio",
    args: [],
    env: {},
    stderr: "ignore",
    headers: {},
    connectTimeoutMs: 15_000,
    reconnect: { maxAttempts: 5, initialDelayMs: 50, maxDelayMs: 500, probeIntervalMs: 1_000 },
    keepalive: { intervalMs: 0, timeoutMs: 1_000, failures: 3 },
    protocol: "auto",
    maxMessageBytes: 16 * 1024 * 1024,
    nice: 0,
    subscriptions: [],
    clientCapabilities: [],
  };
  if ("url" in target) base.url = target.url;
  else Object.assign(base, { command: target.command, args: target.args, env: target.env ?? {} });
  return { ...base, ...extra };
}

export interface Log {
  level: string;
  logger: string | undefined;
  data: unknown;
}

export class HostHarness implements MainControl {
  readonly states: HostState[] = [];
  readonly catalogChanges: Array<Partial<Catalogs>> = [];
  readonly pids: number[] = [];
  readonly logs: Log[] = [];
  readonly updates: string[] = [];
  readonly progress = new Map<number, unknown[]>();
  readonly #piscina: Piscina;
  readonly #data: MessagePort;
  readonly #control: Remote<HostControl>;
  readonly #controlPort: MessagePort;
  readonly #waiting = new Map<number, (outcome: Outcome<unknown>) => void>();
  #nextId = 1;
  /** The task: resolves when the host returns. */
  readonly done: Promise<void>;
  #closed: Promise<void> | undefined;

  constructor(spec: ConnectionSpec) {
    this.#piscina = new Piscina({ filename: HOST_BUNDLE, minThreads: 0, maxThreads: 1, concurrentTasksPerWorker: 1, atomics: "disabled" });
    this.#piscina.on("error", () => {});
    const data = new MessageChannel();
    const control = new MessageChannel();
    this.#data = data.port1;
    this.#data.on("message", (message: ToMain) => this.#onData(message));
    this.#controlPort = control.port1;
    this.#control = wrap<HostControl>(control.port1 as never);
    this.done = this.#piscina.run({ spec, data: data.port2, control: control.port2 }, { transferList: [data.port2, control.port2] as never }) as Promise<void>;
    this.done.catch(() => {});
  }

  /** Starts the connection: the host connects once this is called. */
  open(): void {
    const back = new MessageChannel();
    expose(this, back.port1 as never);
    back.port1.unref();
    void this.#control.open(transfer(back.port2, [back.port2 as never]));
  }

  // ---- MainControl: what the host calls
  state(state: HostState): void {
    this.states.push(state);
  }
  catalogs(changed: Partial<Catalogs>): void {
    this.catalogChanges.push(changed);
  }
  pid(pid: number): void {
    this.pids.push(pid);
  }
  log(level: string, logger: string | undefined, data: unknown): void {
    this.logs.push({ level, logger, data });
  }
  resourceUpdated(uri: string): void {
    this.updates.push(uri);
  }
  /** The harness has no handlers: every server request is refused, as the pool refuses one nobody answers. */
  async serverRequest(_id: number, method: string): Promise<Outcome<unknown>> {
    return { ok: false, error: { code: "PROTOCOL_ERROR", message: `no handler for ${method}`, mcpCode: -32601 } };
  }
  serverRequestEnded(): void {}
  async headers(): Promise<Outcome<Record<string, string>>> {
    return { ok: true, value: {} };
  }

  #onData(message: ToMain): void {
    if (Array.isArray(message)) {
      for (let i = 0; i < message.length; i += RESULT_SLOTS) {
        const id = message[i] as number;
        const resolve = this.#waiting.get(id);
        this.#waiting.delete(id);
        resolve?.(outcomeAt(message, i));
      }
    } else if (message.op === "progress") {
      const seen = this.progress.get(message.id) ?? [];
      seen.push(message.progress);
      this.progress.set(message.id, seen);
    }
  }

  /** Sends one request on the data plane; `result` is its outcome, bounded by `timeoutMs` plus a margin. */
  send(method: RequestMethod, params: Record<string, unknown>, options: { timeoutMs?: number; progress?: boolean } = {}): { id: number; result: Promise<Outcome<unknown>> } {
    const id = this.#nextId++;
    const timeoutMs = options.timeoutMs ?? 15_000;
    const result = new Promise<Outcome<unknown>>((resolve) => this.#waiting.set(id, resolve));
    const message: ToHost = { op: "requests", requests: [{ id, method, params, timeoutMs, progress: options.progress ?? false }] };
    this.#data.postMessage(message);
    return { id, result: within(timeoutMs + 5_000, `${method} ${JSON.stringify(params)}`, result) };
  }

  /** The outcome of one request. */
  request(method: RequestMethod, params: Record<string, unknown>, options?: { timeoutMs?: number; progress?: boolean }): Promise<Outcome<unknown>> {
    return this.send(method, params, options).result;
  }

  cancel(id: number, reason: string): void {
    void this.#control.cancel(id, reason);
  }

  /** The host's latest state report. */
  get last(): HostState | undefined {
    return this.states.at(-1);
  }

  /** Waits until the host has reported ready `count` times in all; returns the latest ready report. */
  async ready(count = 1, ms = 30_000): Promise<NonNullable<HostState["ready"]>> {
    await waitFor(() => this.states.filter((s) => s.state === "ready").length >= count, ms);
    return this.states.filter((s) => s.state === "ready").at(-1)!.ready!;
  }

  /** Closes the host (bounded), lets its task return, and ends the worker. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      try {
        await within(15_000, "host close()", Promise.race([this.#control.close(), this.done]));
        await within(5_000, "host task end", this.done);
      } finally {
        // Its RELEASE would wait for an answer from a host that is gone: the port is closed here.
        this.#control[releaseProxy]();
        this.#controlPort.close();
        this.#data.close();
        await this.#piscina.destroy();
      }
    })();
    return this.#closed;
  }
}

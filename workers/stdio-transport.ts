/**
 * A stdio transport whose server runs as the leader of its own process group.
 *
 * The SDK's `StdioClientTransport` signals only its direct child, so servers started through
 * `npx` or `sh -c` leave their real process behind. Here the child is spawned `detached` (its own
 * process group) and every teardown signals the whole group. Framing is the SDK's (one JSON message
 * per line, `serializeMessage`); what we add is a bound on one message's size that refuses an
 * oversized line while it streams in, instead of buffering it whole. Lines are parsed with JSON.parse
 * alone: the SDK's `deserializeMessage` also zod-parses every message, which the SDK's client checks
 * again on arrival (and the pool's own calls check their results themselves).
 */
import type { ChildProcess } from "node:child_process";
import { getHeapStatistics } from "node:v8";
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client";
import { groupGone, GROUP_EXIT_MS, signalOurGroup } from "../src/common/process-group.js";
import { RESULT_TOO_LARGE_RPC_CODE } from "../src/common/protocol.js";
import { launchServer, type Launched, type ServerCommand } from "./server-process.js";

export interface StdioOptions extends ServerCommand {
  maxMessageBytes: number;
  /**
   * A server already launched for this transport to take instead of spawning one: the worker's first, started
   * while the host's code loaded (host-entry.ts). Called once, at start(); undefined spawns as usual.
   */
  adopt?: () => Launched | undefined;
  /** Called with the server's pid as soon as it is spawned, and its start time (see process-group.ts startTimeOf). */
  onpid?: (pid: number, startTime: string | undefined) => void;
  /** Called on the server's first JSON-RPC message: it is alive and speaks. */
  onheard?: () => void;
  /** Called when a message over the limit was refused; `id` is its request id when it could be read. */
  onoversize?: (id: string | number | undefined) => void;
  /**
   * Called instead of decoding a message this thread's heap cannot hold (under `maxMessageBytes`, but
   * its string and parsed copy would pass the heap limit). V8 aborts the whole process, not just the
   * worker, on one allocation that far past a worker's `resourceLimits`, so the caller must end the
   * worker itself. Without it the message is refused as oversize.
   */
  onheaplimit?: (bytes: number) => void;
}

const NEWLINE = 0x0a;
const NEWLINE_BYTES = Buffer.from([NEWLINE]);
/**
 * A message at least this long (in UTF-16 units) is written as a Buffer. Node keeps what it writes until the pipe
 * takes it, which a busy server can delay for many calls: a string lives that long on the heap (and is
 * promoted through the young generation, copied each time), a Buffer's bytes live outside it.
 */
const BUFFER_LINE_CHARS = 16 * 1024;
/** Lines at least this long are checked against the heap before they are decoded (shorter ones always fit). */
const HEAP_CHECK_BYTES = 1 << 20;
/** Heap a line costs while it becomes a message: its decoded string and the parsed copy of its content. */
const HEAP_COST_FACTOR = 3;
/** How much of an oversized line we keep to find its request id: the SDK writes `id` last. */
const KEEP = 256;
/** An oversized line that has not ended after this long is given up on. */
const OVERSIZE_GRACE_MS = 2_000;
/** Stepped shutdown: stdin end → SIGTERM → SIGKILL, like the SDK, but for the whole group. */
const STDIN_GRACE_MS = 1_000;
const TERM_GRACE_MS = 1_000;

export class ProcessGroupStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  readonly #opts: StdioOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** While an oversized line streams in: its first and last bytes, and when it started. */
  #oversize: { head: string; tail: Buffer; timer: NodeJS.Timeout } | undefined;
  #closed = false;
  #heard = false;
  #closing: Promise<void> | undefined;
  /** close() is shutting the server down: its stdout closing is expected. */
  #stopping = false;
  /** The server's start time, read at its spawn: its group is signalled only while it is still ours. */
  #startTime: string | undefined;
  /** While stdin is full: the wait for its 'drain' (see #drained). */
  #drain: { promise: Promise<void>; release: () => void } | undefined;

  constructor(opts: StdioOptions) {
    this.#opts = opts;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * The server's stderr, as the SDK's stdio transport has it; ours goes where the config says, so there is
   * no stream to read. It is here because the SDK's client tells a stdio transport from an HTTP one by
   * its having both `pid` and `stderr`, and probes a stdio server differently: a probe with no answer
   * means a legacy server that ignores unknown requests before `initialize`, not an outage.
   */
  get stderr(): null {
    return null;
  }

  start(): Promise<void> {
    if (this.#child) throw new Error("ProcessGroupStdioTransport already started");
    const launched = this.#opts.adopt?.() ?? launchServer(this.#opts);
    const child = launched.child;
    this.#child = child;
    this.#exited = launched.closed;
    return launched.spawned.then(
      (startTime) => {
        this.#startTime = startTime;
        if (child.pid !== undefined) this.#opts.onpid?.(child.pid, startTime);
        this.#attach(child);
      },
      (error: Error) => {
        this.onerror?.(error);
        this.#finish();
        throw error;
      },
    );
  }

  /**
   * Listens to a server that runs. One launched ahead (see StdioOptions.adopt) may have exited, or closed
   * its stdin, before anyone listened: that is seen here, as if it happened now.
   */
  #attach(child: ChildProcess): void {
    child.on("error", (error) => {
      this.onerror?.(error);
      this.#finish();
    });
    // The leader is gone: whatever it started in its group goes with it.
    const exited = (): void => {
      if (child.pid !== undefined) signalOurGroup(child.pid, this.#startTime, "SIGKILL");
      this.#finish();
    };
    child.once("exit", exited);
    child.stdin?.on("error", (error) => this.onerror?.(error));
    // A stdin that closes on its own (after EPIPE: the server closed its end) takes every later
    // request, keepalive pings included, with it.
    child.stdin?.once("close", () => this.#pipeClosed(child));
    child.stdout?.on("data", (chunk: Buffer) => this.#read(chunk));
    child.stdout?.on("error", (error) => this.onerror?.(error));
    child.stdout?.once("close", () => this.#pipeClosed(child));
    if (child.exitCode !== null || child.signalCode !== null) exited();
    else if (child.stdin?.destroyed || child.stdout?.destroyed) this.#pipeClosed(child);
  }

  /**
   * A server whose stdout closed can never answer again, and one whose stdin closed never hears another
   * request, even if it keeps running: report the loss now (not when keepalive or a deadline notices)
   * and end its group, SIGTERM then SIGKILL. A pipe closed by close() or by the server's exit is not a loss.
   */
  #pipeClosed(child: ChildProcess): void {
    const pid = child.pid;
    if (this.#closed || this.#stopping || pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    signalOurGroup(pid, this.#startTime, "SIGTERM");
    const timer = setTimeout(() => signalOurGroup(pid, this.#startTime, "SIGKILL"), TERM_GRACE_MS);
    child.once("exit", () => clearTimeout(timer));
    this.#finish();
  }

  #read(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      const piece = chunk.subarray(start, end);
      if (this.#oversize) this.#keepTail(piece);
      else if (this.#pendingBytes + piece.length > this.#opts.maxMessageBytes) this.#beginOversize(piece);
      else if (piece.length > 0) {
        this.#pending.push(piece);
        this.#pendingBytes += piece.length;
      }
      if (nl === -1) return;
      this.#endLine();
      start = nl + 1;
    }
  }

  #endLine(): void {
    if (this.#oversize) {
      const { head, tail, timer } = this.#oversize;
      clearTimeout(timer);
      this.#oversize = undefined;
      this.#refuse(findRequestId(head, tail.toString("utf8")));
      return;
    }
    if (this.#pendingBytes >= HEAP_CHECK_BYTES && !fitsInHeap(this.#pendingBytes)) {
      const bytes = this.#pendingBytes;
      const pieces = this.#pending;
      this.#pending = [];
      this.#pendingBytes = 0;
      if (this.#opts.onheaplimit) this.#opts.onheaplimit(bytes);
      else this.#refuse(findRequestId(pieces[0]!.subarray(0, KEEP).toString("utf8"), pieces.at(-1)!.subarray(-KEEP).toString("utf8")));
      return;
    }
    const line = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    this.#pending = [];
    this.#pendingBytes = 0;
    const text = line.toString("utf8").replace(/\r$/, "");
    if (text.trim() === "") return;
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch (error) {
      this.onerror?.(error as Error);
      return;
    }
    if (typeof message !== "object" || message === null || (message as { jsonrpc?: unknown }).jsonrpc !== "2.0") {
      this.onerror?.(new Error(`not a JSON-RPC 2.0 message: ${text.slice(0, 200)}`));
      return;
    }
    if (!this.#heard) {
      this.#heard = true;
      this.#opts.onheard?.();
    }
    this.onmessage?.(message as JSONRPCMessage);
  }

  #beginOversize(piece: Buffer): void {
    const sofar = Buffer.concat([...this.#pending, piece]);
    this.#pending = [];
    this.#pendingBytes = 0;
    const timer = setTimeout(() => {
      // The line never ended: give up on finding its id.
      this.#oversize = undefined;
      this.#refuse(undefined);
    }, OVERSIZE_GRACE_MS);
    this.#oversize = { head: sofar.subarray(0, KEEP).toString("utf8"), tail: sofar.subarray(-KEEP), timer };
  }

  #keepTail(piece: Buffer): void {
    const o = this.#oversize!;
    o.tail = piece.length >= KEEP ? Buffer.from(piece.subarray(-KEEP)) : Buffer.concat([o.tail, piece]).subarray(-KEEP);
  }

  #refuse(id: string | number | undefined): void {
    if (id !== undefined) {
      // Settle exactly the request that asked for it, through the SDK's normal error path.
      this.onmessage?.({
        jsonrpc: "2.0",
        id,
        error: { code: RESULT_TOO_LARGE_RPC_CODE, message: `message larger than ${this.#opts.maxMessageBytes} bytes refused` },
      } as JSONRPCMessage);
    }
    this.#opts.onoversize?.(id);
  }

  /**
   * Not an async function: one suspended at its wait for 'drain' holds its message, a call's arguments
   * included, until the server has read everything queued ahead of it; a busy server reads slowly, so at
   * 16 calls in flight with 100 KB arguments they outlived the worker's scavenges and were promoted
   * (docs/performance.md, "Host CPU at 100 KB").
   */
  send(message: JSONRPCMessage): Promise<void> {
    try {
      const stdin = this.#write(message);
      return stdin ? this.#drained(stdin) : Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  /** Writes `message` to the server's stdin; returns that stdin when it is full (wait for its 'drain'). */
  #write(message: JSONRPCMessage): NonNullable<ChildProcess["stdin"]> | undefined {
    const stdin = this.#child?.stdin;
    // Refused at once while stopping: an ended stdin never emits 'drain' again, and the SDK's connect()
    // awaits its `initialized` notification's send, so a wait here would hold a connect that met close()
    // until the worker's close grace ran out.
    if (!stdin || this.#closed || this.#stopping) throw new Error("Not connected");
    // A stdin broken (EPIPE) whose 'close' has not been emitted yet: that close ends the link (see
    // #pipeClosed) within this turn, and the link's loss decides what becomes of this message (a call
    // ends CONNECTION_LOST); refusing it would fail the call with "Not connected" instead.
    if (!stdin.writable) return undefined;
    // The requests of one tick (a CallBatch) leave in one writev: the server then reads them in one
    // chunk instead of waking per request (about 10% less server CPU per echo call at 64 in flight).
    if (!stdin.writableCorked) {
      stdin.cork();
      process.nextTick(uncork, stdin);
    }
    // The SDK's framing (`serializeMessage`: the JSON, then a newline), written in two parts when large so
    // that the JSON is never copied to append the newline.
    const json = JSON.stringify(message);
    let room: boolean;
    if (json.length < BUFFER_LINE_CHARS) room = stdin.write(json + "\n");
    else {
      stdin.write(Buffer.from(json));
      room = stdin.write(NEWLINE_BYTES);
    }
    return room ? undefined : stdin;
  }

  /**
   * One wait for 'drain' shared by every send that found stdin full. It ends on 'drain', on stdin's
   * close, and when the transport stops or ends (then what was written is flushed or lost with the
   * server, and a call's fate is decided by the link's loss, not by this send).
   */
  #drained(stdin: NonNullable<ChildProcess["stdin"]>): Promise<void> {
    if (this.#drain) return this.#drain.promise;
    let release!: () => void;
    const promise = new Promise<void>((resolve) => {
      release = () => {
        stdin.off("drain", release);
        stdin.off("close", release);
        if (this.#drain?.promise === promise) this.#drain = undefined;
        resolve();
      };
    });
    stdin.once("drain", release);
    stdin.once("close", release);
    this.#drain = { promise, release };
    return promise;
  }

  /**
   * Stepped shutdown of the whole group; resolves once the server has exited. Teardown calls it from
   * several places (the host, the SDK client's close): they all share the one shutdown.
   */
  close(): Promise<void> {
    const child = this.#child;
    if (!child || child.pid === undefined) {
      this.#finish();
      return Promise.resolve();
    }
    this.#closing ??= this.#shutdown(child, child.pid);
    return this.#closing;
  }

  async #shutdown(child: ChildProcess, pid: number): Promise<void> {
    this.#stopping = true;
    this.#drain?.release();
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin?.end();
      if (!(await exitsWithin(this.#exited!, STDIN_GRACE_MS))) {
        signalOurGroup(pid, this.#startTime, "SIGTERM");
        if (!(await exitsWithin(this.#exited!, TERM_GRACE_MS))) {
          signalOurGroup(pid, this.#startTime, "SIGKILL");
          await exitsWithin(this.#exited!, TERM_GRACE_MS);
        }
      }
    }
    signalOurGroup(pid, this.#startTime, "SIGKILL"); // grandchildren that outlived the leader
    // close() promises nothing is left, so it waits (briefly) until that is true.
    await groupGone(pid, GROUP_EXIT_MS);
    this.#finish();
  }

  #finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#drain?.release();
    if (this.#oversize) clearTimeout(this.#oversize.timer);
    this.#oversize = undefined;
    this.#pending = [];
    this.onclose?.();
  }
}

function fitsInHeap(bytes: number): boolean {
  const heap = getHeapStatistics();
  return heap.used_heap_size + bytes * HEAP_COST_FACTOR < heap.heap_size_limit;
}

function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]).finally(() => clearTimeout(timer));
}

const ID_AT_END = /"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*\}\s*$/;
const ID_AT_START = /^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")/;

/** The request id of a JSON-RPC response from its first and last bytes, if it stands at either end. */
export function findRequestId(head: string, tail: string): string | number | undefined {
  const m = ID_AT_END.exec(tail) ?? ID_AT_START.exec(head);
  if (!m) return undefined;
  return m[1]!.startsWith('"') ? (JSON.parse(m[1]!) as string) : Number(m[1]);
}

function uncork(stream: NodeJS.WritableStream & { uncork(): void }): void {
  stream.uncork();
}

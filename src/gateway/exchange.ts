/**
 * One downstream request (tools/call, prompts/get, resources/read) through the pool, over as many
 * rounds as its servers ask for input. A request from a server (elicitation, sampling, roots) that the
 * pool routes to the downstream client's session comes here, to the exchange of the call that caused it;
 * the gateway's handler then answers the downstream request with `input_required` (the SDK's legacy shim
 * turns that into real requests on a 2025-era client's stream), and the retried request, which carries
 * the `requestState` token minted here, delivers the answers. The pool call stays in flight meanwhile.
 */
import { randomBytes } from "node:crypto";

/** An input request of a server, as the 2026-07-28 `inputRequests` entry that asks the downstream client for it. */
export interface InputAsk {
  request: { method: "elicitation/create" | "sampling/createMessage" | "roots/list"; params?: Record<string, unknown> };
  resolve(answer: unknown): void;
  reject(error: Error): void;
}

export type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export class Exchange {
  /** The configured server and its own tool name (the pool's handler context names them). */
  readonly server: string | undefined;
  readonly tool: string | undefined;
  readonly principal: string;
  readonly abort = new AbortController();
  outcome: Outcome | undefined;
  /** Asks not yet sent downstream. */
  readonly queued: InputAsk[] = [];
  /** Asks sent downstream in the last round, by their `inputRequests` key. */
  readonly asked = new Map<string, InputAsk>();
  /** The token of the round awaiting the client's retry. */
  token: string | undefined;
  /** Sends a progress notification to the downstream request of the current round. */
  progress: ((p: { progress: number; total?: number; message?: string }) => void) | undefined;
  /** The client capabilities of the current round's downstream request (what may be asked of it). */
  clientCapabilities: Record<string, unknown> | undefined;
  /** Settles (never rejects) when the pool request has ended. */
  readonly ended: Promise<void>;
  #ended!: () => void;
  #wake: (() => void) | undefined;
  #keys = 0;

  constructor(principal: string, server: string | undefined, tool: string | undefined) {
    this.principal = principal;
    this.server = server;
    this.tool = tool;
    this.ended = new Promise((resolve) => (this.#ended = resolve));
  }

  /** Starts the pool request; its outcome ends the exchange. */
  start(run: (signal: AbortSignal) => Promise<unknown>): void {
    let started: Promise<unknown>;
    try {
      started = run(this.abort.signal);
    } catch (error) {
      started = Promise.reject(error);
    }
    started.then(
      (value) => this.#settle({ ok: true, value }),
      (error: unknown) => this.#settle({ ok: false, error }),
    );
  }

  /** A server's input request for this exchange; settles when the downstream client answers, or with `signal`. */
  ask(request: InputAsk["request"], signal: AbortSignal): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const entry: InputAsk = { request, resolve, reject };
      const onAbort = () => {
        const i = this.queued.indexOf(entry);
        if (i >= 0) this.queued.splice(i, 1);
        reject(signal.reason instanceof Error ? signal.reason : new Error("cancelled"));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      this.queued.push(entry);
      this.#wake?.();
    });
  }

  /** Waits until the pool request ends or a server asks for input, whichever comes first. */
  async next(): Promise<void> {
    // The pool request always settles (its deadline, or the abort of a cancelled downstream request).
    if (this.outcome || this.queued.length > 0) return;
    await new Promise<void>((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Moves the queued asks into a round: its `inputRequests` and the token the retry must bring back. */
  round(): { inputRequests: Record<string, InputAsk["request"]>; requestState: string } {
    const inputRequests: Record<string, InputAsk["request"]> = {};
    for (const ask of this.queued.splice(0)) {
      const key = `input-${++this.#keys}`;
      this.asked.set(key, ask);
      inputRequests[key] = ask.request;
    }
    this.token = randomBytes(24).toString("base64url");
    return { inputRequests, requestState: this.token };
  }

  /** The retry's answers: each ask of the last round gets its answer, or fails when the client sent none. */
  deliver(responses: Record<string, unknown> | undefined): void {
    for (const [key, ask] of this.asked) {
      const answer = responses?.[key];
      if (answer !== null && typeof answer === "object") ask.resolve(answer);
      else ask.reject(new Error(`the downstream client gave no answer to ${ask.request.method}`));
    }
    this.asked.clear();
    this.token = undefined;
  }

  /** Ends a round that will not be retried (gateway closing, client gone): its asks fail. */
  drop(reason: string): void {
    for (const ask of [...this.asked.values(), ...this.queued.splice(0)]) ask.reject(new Error(reason));
    this.asked.clear();
    this.abort.abort(new Error(reason));
  }

  #settle(outcome: Outcome): void {
    this.outcome = outcome;
    for (const ask of [...this.asked.values(), ...this.queued.splice(0)]) ask.reject(new Error("the request has ended"));
    this.asked.clear();
    this.#wake?.();
    this.#ended();
  }
}

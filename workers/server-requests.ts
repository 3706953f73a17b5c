/**
 * Requests from the server (sampling, elicitation, roots), worker side: the host does not answer them,
 * it asks the main thread, whose handlers do (src/server-requests.ts), over the control plane.
 *
 * - Legacy era: the server sends the request on the connection; the SDK's client dispatches it to the
 *   handler registered here, for the capabilities this connection declares only (the SDK answers any
 *   other with -32601 at once). Over Streamable HTTP it is tied to the call on whose stream the server
 *   sent it (http-calls.ts); otherwise to a call when exactly one of the pool's requests is in flight on
 *   the connection, else to none (requests.ts `originOf`).
 * - 2026-07-28: the request comes back as the call's `input_required` result; the request path
 *   (requests.ts) asks here with that call as the origin, and sends the call again with the answers.
 *
 * An ask ends on the host's side when the server cancels it (legacy: the SDK aborts its handler's
 * signal) or its call ends (requests.ts): the main thread is told, its handler's signal aborts, and the
 * answer it gives later is dropped.
 */
import { ProtocolError, type ClientCapabilities } from "@modelcontextprotocol/client";
import type { Remote } from "comlink";
import { wireError, type ClientCapabilityKind, type MainControl, type Outcome } from "../src/common/protocol.js";
import type { PoolClient } from "./link.js";

export const METHOD_OF_KIND: Readonly<Record<ClientCapabilityKind, "sampling/createMessage" | "elicitation/create" | "roots/list">> = {
  sampling: "sampling/createMessage",
  elicitation: "elicitation/create",
  roots: "roots/list",
};

/** The capabilities a client declares for `kinds` (elicitation: form and URL mode). */
export function capabilitiesOf(kinds: readonly ClientCapabilityKind[]): ClientCapabilities {
  const caps: ClientCapabilities = {};
  if (kinds.includes("sampling")) caps.sampling = {};
  if (kinds.includes("elicitation")) caps.elicitation = { form: {}, url: {} };
  if (kinds.includes("roots")) caps.roots = {};
  return caps;
}

const INTERNAL_ERROR = -32603;

export class ServerAsks {
  readonly #main: () => Remote<MainControl> | undefined;
  readonly #kinds: readonly ClientCapabilityKind[];
  /** Asks waiting for the main thread's answer, by their id: their local end. */
  readonly #open = new Map<number, (reason: string) => void>();
  #nextId = 0;

  constructor(main: () => Remote<MainControl> | undefined, kinds: readonly ClientCapabilityKind[]) {
    this.#main = main;
    this.#kinds = kinds;
  }

  /** Whether this connection declared what `method` needs (only then may the server ask it). */
  declares(method: string): boolean {
    return this.#kinds.some((kind) => METHOD_OF_KIND[kind] === method);
  }

  /** Registers a handler on `client` for each declared capability (legacy era requests; v2's own rounds). */
  register(client: PoolClient, originOf: (requestId: string | number) => number | undefined): void {
    for (const kind of this.#kinds) {
      const method = METHOD_OF_KIND[kind];
      client.setRequestHandler(method, async (request, ctx) => {
        const { outcome } = this.ask(method, request.params, originOf(ctx.mcpReq.id), ctx.mcpReq.signal);
        const o = await outcome;
        if (o.ok) return o.value as never;
        throw new ProtocolError(o.error.mcpCode ?? INTERNAL_ERROR, o.error.message);
      });
    }
  }

  /**
   * Asks the main thread to answer `method`. The outcome is the handler's, or an error as soon as the ask
   * ends here (`signal`, or `end(id)`): the main thread then hears that it ended.
   */
  ask(method: string, params: unknown, origin: number | undefined, signal?: AbortSignal): { id: number; outcome: Promise<Outcome<unknown>> } {
    const id = ++this.#nextId;
    const main = this.#main();
    if (!main) return { id, outcome: Promise.resolve({ ok: false, error: wireError("CONNECTION_LOST", "the pool is gone", { mcpCode: INTERNAL_ERROR }) }) };
    let end!: (reason: string) => void;
    const ended = new Promise<Outcome<unknown>>((resolve) => {
      end = (reason) => {
        if (!this.#open.delete(id)) return;
        main.serverRequestEnded(id, reason).catch(() => {});
        resolve({ ok: false, error: wireError("ABORTED", `${method} ended: ${reason}`, { mcpCode: INTERNAL_ERROR }) });
      };
    });
    this.#open.set(id, end);
    const onAbort = () => end(signal?.reason instanceof Error ? signal.reason.message : "cancelled by the server");
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    const answered = main.serverRequest(id, method, params, origin).then(
      (outcome) => outcome,
      (error: unknown): Outcome<unknown> => ({ ok: false, error: wireError("CONNECTION_LOST", `the main thread did not answer: ${String(error)}`, { mcpCode: INTERNAL_ERROR }) }),
    );
    const outcome = Promise.race([answered, ended]).finally(() => {
      this.#open.delete(id);
      signal?.removeEventListener("abort", onAbort);
    });
    return { id, outcome };
  }

  /** Ends ask `id` on this side (its call ended): the main thread's handler is told, its answer dropped. */
  end(id: number, reason: string): void {
    this.#open.get(id)?.(reason);
  }

  /** The connection closes: every ask ends. */
  endAll(reason: string): void {
    for (const end of [...this.#open.values()]) end(reason);
  }
}

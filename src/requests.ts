/**
 * Requests as the facade's methods make them: each is checked, resolved to its server (router.ts) and let
 * in as one `Call` (call.ts), which its group sends (server-group.ts → connection.ts). Nothing is counted,
 * opened or sent for a request found unusable here.
 */
import type { CallToolResult, CompleteResult, GetPromptResult, ToolAnnotations } from "@modelcontextprotocol/client";
import type { Admission } from "./admission.js";
import { Call, KINDS, type RequestKind } from "./call.js";
import type { PoolConfig, ServerConfig } from "./config.js";
import type { Connection } from "./connection.js";
import { McpPoolError } from "./errors.js";
import type { CallToolOptions, CompleteParams, RequestOptions, ResourceOptions } from "./pool.js";
import type { PoolPrompt } from "./catalogs.js";
import type { Router } from "./router.js";
import type { GroupHost } from "./server-group.js";
import type { Servers } from "./servers.js";
import type { Session, SessionOptions, Sessions } from "./sessions.js";
import type { Telemetry } from "./telemetry.js";
import { argsProblem, readCall, type CheckedCallOptions } from "./validate.js";

/** Who makes a request: a session (by `sessionId`, or a handle with its options), or the pool. */
export interface Caller {
  sessionId: string | undefined;
  handleOptions: SessionOptions | undefined;
}

export const POOL_CALLER: Caller = { sessionId: undefined, handleOptions: undefined };

/** Options of a request the pool makes on its own (a session's subscriptions ended with it). */
export const NO_OPTIONS: CheckedCallOptions = { sessionId: undefined, server: undefined, timeoutMs: undefined, signal: undefined, onProgress: undefined };

export class Requests {
  readonly #config: PoolConfig;
  readonly #router: Router;
  readonly #sessions: Sessions;
  readonly #servers: Servers;
  readonly #admission: Admission;
  readonly #groupHost: GroupHost;
  readonly #telemetry: Telemetry;

  constructor(config: PoolConfig, router: Router, sessions: Sessions, servers: Servers, admission: Admission, groupHost: GroupHost, telemetry: Telemetry) {
    this.#config = config;
    this.#router = router;
    this.#sessions = sessions;
    this.#servers = servers;
    this.#admission = admission;
    this.#groupHost = groupHost;
    this.#telemetry = telemetry;
  }

  callTool(name: string, args: Record<string, unknown>, options: CallToolOptions, caller: Caller): Promise<CallToolResult> {
    return this.#byName("tools", name, args, options, caller, false) as Promise<CallToolResult>;
  }

  getPrompt(name: string, args: Record<string, string>, options: RequestOptions, caller: Caller): Promise<GetPromptResult> {
    return this.#byName("prompts", name, args, options, caller, false) as Promise<GetPromptResult>;
  }

  /** A tool call or a prompt: the pool name resolved in the caller's view, then the server's own name sent. */
  #byName(catalog: "tools" | "prompts", name: string, args: Record<string, unknown>, options: RequestOptions, caller: Caller, listed: boolean): Promise<unknown> {
    const method = catalog === "tools" ? KINDS.callTool.method : KINDS.getPrompt.method;
    if (this.#admission.closing) return this.#refuse(method, name, new McpPoolError("POOL_CLOSED", "pool is closed", { tool: name }));
    const checked = readCall(name, options, catalog === "tools" ? "a tool name" : "a prompt name");
    if (typeof checked === "string") return this.#refuse(method, name, new McpPoolError("INVALID_ARGUMENTS", checked));
    const sessionId = caller.sessionId ?? checked.sessionId;
    const tool = catalog === "tools" ? this.#router.tool(name, sessionId) : undefined;
    const entry = tool ?? (catalog === "prompts" ? this.#router.prompt(name, sessionId) : undefined);
    if (!entry) {
      // The name may be one of the session's own that its connections have not listed yet (a server whose
      // lists depend on the caller): list them first, as session.listTools() would, then look again.
      if (sessionId !== undefined && !listed && this.#router.sessionUnlisted(sessionId)) {
        return this.#afterListing({ sessionId, handleOptions: caller.handleOptions }, checked.timeoutMs, () => this.#byName(catalog, name, args, options, caller, true));
      }
      return this.#refuse(method, name, this.#router.notFound(catalog, name));
    }
    const own = tool ? tool.tool.name : (entry as PoolPrompt).prompt.name;
    const badArgs = argsProblem(args);
    if (badArgs !== undefined) return this.#refuse(method, own, new McpPoolError("INVALID_ARGUMENTS", badArgs, { server: entry.server, tool: own }));
    const kind = tool ? KINDS.callTool : KINDS.getPrompt;
    return this.admit(kind, this.#config.servers[entry.server]!, own, { name: own, arguments: args }, checked, caller, tool?.tool.annotations);
  }

  /** A request routed by a URI (a read, a subscription verb, a completion of a template): `params` default to `{ uri }`. */
  resource(kind: RequestKind, uri: string, options: ResourceOptions, caller: Caller, params: Record<string, unknown> = { uri }): Promise<unknown> {
    const target = kind === KINDS.complete ? undefined : uri;
    if (this.#admission.closing) return this.#refuse(kind.method, target, new McpPoolError("POOL_CLOSED", "pool is closed", { server: options?.server }));
    const checked = readCall(uri, options, "a resource URI");
    if (typeof checked === "string") return this.#refuse(kind.method, target, new McpPoolError("INVALID_ARGUMENTS", checked));
    const server = this.#router.uri(uri, checked.server, caller.sessionId ?? checked.sessionId);
    if (server instanceof McpPoolError) return this.#refuse(kind.method, target, server);
    return this.admit(kind, server, undefined, params, checked, caller, undefined);
  }

  complete(params: CompleteParams, options: ResourceOptions, caller: Caller): Promise<CompleteResult["completion"]> {
    const method = KINDS.complete.method;
    if (this.#admission.closing) return this.#refuse(method, undefined, new McpPoolError("POOL_CLOSED", "pool is closed"));
    const ref = (params as { ref?: { type?: unknown; name?: unknown; uri?: unknown } } | null)?.ref;
    if (ref?.type === "ref/resource") {
      if (typeof ref.uri !== "string") return this.#refuse(method, undefined, new McpPoolError("INVALID_ARGUMENTS", "a ref/resource needs a uri"));
      return this.resource(KINDS.complete, ref.uri, options, caller, params as unknown as Record<string, unknown>) as Promise<CompleteResult["completion"]>;
    }
    if (ref?.type !== "ref/prompt" || typeof ref.name !== "string") return this.#refuse(method, undefined, new McpPoolError("INVALID_ARGUMENTS", "complete() needs a ref of type ref/prompt (with a name) or ref/resource (with a uri)"));
    const checked = readCall(ref.name, options, "a prompt name");
    if (typeof checked === "string") return this.#refuse(method, undefined, new McpPoolError("INVALID_ARGUMENTS", checked));
    const entry = this.#router.prompt(ref.name, caller.sessionId ?? checked.sessionId);
    if (!entry) return this.#refuse(method, undefined, this.#router.notFound("prompts", ref.name));
    const sent = { ...params, ref: { ...params.ref, name: entry.prompt.name } };
    return this.admit(KINDS.complete, this.#config.servers[entry.server]!, entry.prompt.name, sent, checked, caller, undefined) as Promise<CompleteResult["completion"]>;
  }

  /**
   * Subscribes or unsubscribes: a subscription is held by one connection of the group that serves the URI
   * (the worker subscribes again after that connection's reopen or replacement). Subscribing twice to the
   * same URI through the same group costs nothing; an unsubscribe goes to the connection that holds it.
   */
  async subscription(verb: "add" | "remove", uri: string, options: ResourceOptions, caller: Caller): Promise<void> {
    const method = verb === "add" ? KINDS.subscribe.method : KINDS.unsubscribe.method;
    if (this.#admission.closing) return this.#refuse(method, uri, new McpPoolError("POOL_CLOSED", "pool is closed"));
    const checked = readCall(uri, options, "a resource URI");
    if (typeof checked === "string") return this.#refuse(method, uri, new McpPoolError("INVALID_ARGUMENTS", checked));
    const sessionId = caller.sessionId ?? checked.sessionId;
    const server = this.#router.uri(uri, checked.server, sessionId);
    if (server instanceof McpPoolError) return this.#refuse(method, uri, server);
    let session: Session | undefined;
    try {
      session = sessionId === undefined ? undefined : this.#openSession({ sessionId, handleOptions: caller.handleOptions });
    } catch (error) {
      return this.#refuse(method, uri, error as McpPoolError);
    }
    const group = this.#router.group(server, session, this.#groupHost);
    if (group instanceof McpPoolError) return this.#refuse(method, uri, group);
    const holder = group.connections.find((c) => c.subscriptions.has(uri));
    // A session's subscriptions on a shared server end with it (see #sessionClosed).
    const shared = session && server.scope === "shared" ? session.sharedSubscriptions : undefined;
    if (verb === "add") {
      if (!holder) await this.admit(KINDS.subscribe, server, undefined, { uri }, checked, caller, undefined);
      if (shared) (shared.get(server.name) ?? shared.set(server.name, new Set()).get(server.name)!).add(uri);
      return;
    }
    shared?.get(server.name)?.delete(uri);
    if (holder) await this.admit(KINDS.unsubscribe, server, undefined, { uri }, checked, caller, undefined, holder);
  }

  /**
   * Lets one request in: counted from here, with its deadline's timer armed, until it settles. Everything
   * the caller passed was checked before.
   */
  admit(kind: RequestKind, server: ServerConfig, tool: string | undefined, params: Record<string, unknown>, checked: CheckedCallOptions, caller: Caller, annotations: ToolAnnotations | undefined, via?: Connection): Promise<unknown> {
    if (checked.signal?.aborted) return this.#refuse(kind.method, targetOf(kind, tool, params), new McpPoolError("ABORTED", "aborted before the request started", { server: server.name, tool }));
    const sessionId = caller.sessionId ?? checked.sessionId;
    let session: Session | undefined;
    if (sessionId !== undefined) {
      try {
        session = this.#openSession({ sessionId, handleOptions: caller.handleOptions });
      } catch (error) {
        return this.#refuse(kind.method, targetOf(kind, tool, params), error as McpPoolError);
      }
    }
    const group = this.#router.group(server, session, this.#groupHost);
    if (group instanceof McpPoolError) return this.#refuse(kind.method, targetOf(kind, tool, params), new McpPoolError(group.code, group.message, { server: server.name, tool }));
    const ledger = this.#admission;
    const telemetry = this.#telemetry;
    const timeoutMs = checked.timeoutMs ?? server.toolCallTimeoutMs;
    // One promise per request, the caller's: the Call settles it (no promise chain).
    return new Promise((resolve, reject) => {
      const call = new Call({ kind, server, group, session, tool, params, timeoutMs, signal: checked.signal, onProgress: checked.onProgress, annotations, ledger, resolve, reject, via });
      ledger.admitted(call);
      telemetry.begin(call);
      call.route();
    });
  }

  /** A request refused before it was let in: recorded (telemetry), then the caller's rejection. */
  #refuse(method: string, target: string | undefined, error: McpPoolError): Promise<never> {
    this.#telemetry.refused(method, target, error);
    return Promise.reject(error);
  }

  #openSession(caller: Caller): Session {
    if (this.#admission.closing) throw new McpPoolError("POOL_CLOSED", "pool is closed");
    return this.#sessions.open(caller.sessionId!, caller.handleOptions);
  }

  /** A request whose name the session's view may hold once its own connections have listed (see #callTool). */
  async #afterListing<T>(caller: Caller, timeoutMs: number | undefined, then: () => Promise<T>): Promise<T> {
    await this.listSessionCatalogs(caller, timeoutMs);
    return then();
  }

  /**
   * Opens the session's connections to its session-scoped servers that have not listed to it yet, and
   * waits (as a call would) until each has listed or failed: what a server lists may depend on who asks.
   */
  async listSessionCatalogs(caller: Caller, timeoutMs?: number): Promise<void> {
    const session = this.#openSession(caller);
    const waits: Promise<void>[] = [];
    for (const server of this.#servers.list) {
      if (server.scope !== "session" || session.catalogs?.has(server.name)) continue;
      // Failed: the view keeps the pool's lists for that server.
      waits.push(session.group(server, this.#groupHost).whenSettled(timeoutMs ?? server.connectTimeoutMs + this.#config.limits.acquireTimeoutMs));
    }
    if (waits.length === 0) return;
    // Not idle while it waits (idle sessions are evicted).
    session.active++;
    try {
      await Promise.all(waits);
    } finally {
      session.active--;
      session.lastUsed = Date.now();
    }
  }
}

/** What a refused request's span names as its target (computed for refusals only, never for a request let in). */
function targetOf(kind: RequestKind, tool: string | undefined, params: Record<string, unknown>): string | undefined {
  return tool ?? (kind.method.startsWith("resources/") ? (params.uri as string) : undefined);
}

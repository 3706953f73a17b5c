/**
 * What both framework adapters share: their options, checked at run time, and the pool tools they expose
 * (the pool's catalog, or a session's view of it, filtered by `include` / `exclude`). Imports nothing from
 * any framework, so that neither adapter loads the other's.
 */
import type { PoolTool } from "../catalogs.js";
import { McpPoolError } from "../errors.js";
import type { McpPool } from "../pool.js";
import { sessionIdProblem } from "../validate.js";

/** Picks tools by their pool entry (`{ name, server, tool }`): true keeps the tool. */
export type ToolPredicate = (tool: PoolTool) => boolean;

/** Options of `aiSdkTools` and `langchainTools`. Anything not as typed rejects with INVALID_ARGUMENTS. */
export interface AdapterOptions {
  /**
   * Lists the tools this session sees (`pool.session(id).listTools()`: it opens the session's own connections
   * to session-scoped servers, and waits for them as a call would) and routes every call to that session.
   * Without it, the pool's shared catalog and shared connections; a tool of a session-scoped server then
   * fails with INVALID_ARGUMENTS when called, as `pool.callTool` does without a session.
   * 1 to 256 characters, as for `pool.session(id)`.
   */
  sessionId?: string;
  /**
   * Only these tools: an array of pool names (as `pool.listTools()` gives them, e.g. `"github__create_issue"`),
   * or a predicate on each tool's pool entry, e.g. `(t) => t.server === "github"` or
   * `(t) => t.tool.annotations?.readOnlyHint === true`. A name that is not in the catalog matches nothing and is
   * no error: a server that is down lists no tools until it is back. Default: every tool.
   */
  include?: readonly string[] | ToolPredicate;
  /** Not these tools (pool names or a predicate, as for `include`), applied after `include`. Default: none. */
  exclude?: readonly string[] | ToolPredicate;
}

/** The options as checked, with the filters turned into predicates. */
export interface CheckedAdapterOptions {
  sessionId: string | undefined;
  keep: (tool: PoolTool) => boolean;
}

const KNOWN = new Set(["sessionId", "include", "exclude"]);

/**
 * Checks an adapter's arguments and lists the tools it exposes, in catalog order.
 * @throws McpPoolError INVALID_ARGUMENTS (as a rejection) for a value that is not a pool, bad options, or a
 * bad session id; POOL_CLOSED for a session of a closed pool. What a predicate throws rejects as it is.
 */
export async function selectTools(adapter: string, pool: McpPool, options: AdapterOptions | undefined): Promise<{ tools: PoolTool[]; sessionId: string | undefined }> {
  if (!isPool(pool)) throw new McpPoolError("INVALID_ARGUMENTS", `${adapter}: the first argument must be a pool from createPool(), not ${kindOf(pool)}`);
  const checked = checkOptions(adapter, options);
  const listed = checked.sessionId === undefined ? await pool.listTools() : await pool.session(checked.sessionId).listTools();
  return { tools: listed.filter(checked.keep), sessionId: checked.sessionId };
}

/** @throws McpPoolError INVALID_ARGUMENTS naming the option and what it got. */
export function checkOptions(adapter: string, options: unknown): CheckedAdapterOptions {
  if (options === undefined) return { sessionId: undefined, keep: () => true };
  const fail = (message: string): never => {
    throw new McpPoolError("INVALID_ARGUMENTS", `${adapter}: ${message}`);
  };
  if (options === null || typeof options !== "object" || Array.isArray(options)) return fail(`options must be an object, not ${kindOf(options)}`);
  // Strict, as the pool's config is: a misspelt option (`sessionID`, `includes`) would otherwise be ignored without a word.
  for (const key of Object.keys(options)) if (!KNOWN.has(key)) fail(`unknown option "${key}" (known: sessionId, include, exclude)`);
  const { sessionId, include, exclude } = options as Record<string, unknown>;
  if (sessionId !== undefined) {
    const problem = sessionIdProblem(sessionId);
    if (problem !== undefined) fail(`options.sessionId: ${problem}`);
  }
  const inc = filterOf("include", include, fail);
  const exc = filterOf("exclude", exclude, fail);
  let keep: (tool: PoolTool) => boolean;
  if (inc && exc) keep = (t) => inc(t) && !exc(t);
  else if (inc) keep = inc;
  else if (exc) keep = (t) => !exc(t);
  else keep = () => true;
  return { sessionId: sessionId as string | undefined, keep };
}

function filterOf(option: string, value: unknown, fail: (message: string) => never): ToolPredicate | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "function") {
    const predicate = value as ToolPredicate;
    return (tool) => Boolean(predicate(tool));
  }
  if (!Array.isArray(value)) return fail(`options.${option} must be an array of pool tool names or a function, not ${kindOf(value)}`);
  value.forEach((name, i) => {
    if (typeof name !== "string" || name === "") fail(`options.${option}[${i}] must be a non-empty tool name, not ${kindOf(name)}`);
  });
  // A copy: later changes to the caller's array do not change what this set exposes.
  const names = new Set(value as string[]);
  return (tool) => names.has(tool.name);
}

function isPool(value: unknown): value is McpPool {
  if (value === null || typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  return typeof v.listTools === "function" && typeof v.callTool === "function" && typeof v.session === "function";
}

export function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

/**
 * The tool catalog: pool-wide unique names for every server's tools, updated whenever a server's
 * tool list changes (list_changed, reopen, worker replacement). Pure: no threads, no I/O.
 *
 * Naming: a tool is offered `<prefix>__<tool>` (or its alias, or its bare name with prefix ""); when that
 * is taken, `<server>__<tool>`, then `<server>__<tool>_2`, `_3`, ... A name once handed out keeps
 * meaning the same tool while its server lists that tool: a server that lists later never takes it
 * over. Until the pool is ready (`seal()`), contested names go to the server listed first in the
 * config, so that names do not depend on which server started faster.
 */
import type { Tool } from "@modelcontextprotocol/client";
import type { ServerConfig } from "./config.js";

export interface PoolTool {
  /** Unique across the pool; stable for as long as the server keeps the tool. */
  name: string;
  /** The configured server name. */
  server: string;
  /** The server's own MCP Tool object (original name intact; description replaced when overridden). */
  tool: Tool;
}

export const NAME_SEPARATOR = "__";

/** The pool name a server's tool gets before collisions are resolved. */
export function poolName(server: ServerConfig, toolName: string): string {
  const alias = server.tools.overrides?.[toolName]?.alias;
  if (alias) return alias;
  return server.prefix ? `${server.prefix}${NAME_SEPARATOR}${toolName}` : toolName;
}

function exposed(server: ServerConfig, tool: Tool): boolean {
  // A tool that must run as an MCP task (task augmentation) cannot be called with a plain tools/call,
  // and the pool does not run tasks yet: it is not listed rather than listed and refused on every call.
  if ((tool as { execution?: { taskSupport?: unknown } }).execution?.taskSupport === "required") return false;
  const { include, exclude } = server.tools;
  if (include && !include.includes(tool.name)) return false;
  return !exclude?.includes(tool.name);
}

/**
 * Builds the catalog from each server's current tools at once. Servers earlier in the config keep a
 * contested name; a later server's tool falls back to `<server>__<tool>`, then to a numbered name.
 */
export function buildCatalog(servers: readonly ServerConfig[], toolsByServer: ReadonlyMap<string, readonly Tool[]>): PoolTool[] {
  const catalog = new Catalog(servers);
  // Sealed, then listed in config order: earlier servers are named first.
  catalog.seal();
  for (const server of servers) {
    const tools = toolsByServer.get(server.name);
    if (tools) catalog.update(server.name, tools);
  }
  return catalog.list();
}

/**
 * Versioned per server: every change to a server's tools bumps its version. Once sealed, updating one
 * server costs that server's tools only (before, while the pool starts, every listed server's).
 *
 * With a `base`, it is one session's view: its own lists for the servers it has listed (its
 * session-scoped servers) over the base's lists for the others, named as the base names the same tools,
 * and never giving its own tools a name the base hands out. A name this view handed out first stays
 * this view's, even if the base hands it out later (its entry is then hidden in this view).
 */
export class Catalog {
  readonly #servers: readonly ServerConfig[];
  readonly #configs = new Map<string, ServerConfig>();
  readonly #base: Catalog | undefined;
  readonly #tools = new Map<string, readonly Tool[]>();
  readonly #versions = new Map<string, number>();
  /** Each server's entries, in its list's order. */
  readonly #entries = new Map<string, PoolTool[]>();
  /** Each server's entries by the tool's own name (a server may list one name several times). */
  readonly #byTool = new Map<string, Map<string, PoolTool[]>>();
  readonly #byName = new Map<string, PoolTool>();
  /** The next numbered suffix worth trying per fallback name: keeps naming linear in the number of tools. */
  readonly #nextSuffix = new Map<string, number>();
  #sealed: boolean;

  constructor(servers: readonly ServerConfig[], base?: Catalog) {
    this.#servers = servers;
    for (const s of servers) this.#configs.set(s.name, s);
    this.#base = base;
    this.#sealed = base !== undefined;
  }

  /** From now on a name once handed out stays with its tool (until then, config order decides). */
  seal(): void {
    this.#sealed = true;
  }

  /**
   * Records a server's current tools. Returns true when they changed from what was seen before: the
   * server's last list, or in a session's view that had none of its own yet, the base's.
   */
  update(server: string, tools: readonly Tool[]): boolean {
    const before = this.#tools.get(server);
    this.#versions.set(server, (this.#versions.get(server) ?? 0) + 1);
    // One comparison per list: a long list is serialized to compare it.
    if (before && sameTools(before, tools)) return false;
    this.#tools.set(server, tools);
    if (this.#sealed) this.#name(server, this.#release(server, tools));
    else this.#rebuild();
    if (before) return true;
    const base = this.#base ? this.#base.#tools.get(server) : undefined;
    return !(base && sameTools(base, tools));
  }

  /** Names every server's tools afresh, in config order (before the catalog is sealed: nothing is handed out yet). */
  #rebuild(): void {
    this.#byName.clear();
    this.#nextSuffix.clear();
    for (const s of this.#servers) if (this.#tools.has(s.name)) this.#name(s.name, new Map());
  }

  /**
   * Frees the names of `server`'s entries that `tools` no longer lists; returns those it still lists,
   * by tool name, in occurrence order, to keep their names.
   */
  #release(server: string, tools: readonly Tool[]): Map<string, PoolTool[]> {
    const kept = new Map<string, PoolTool[]>();
    const old = this.#byTool.get(server);
    if (!old) return kept;
    const wanted = new Map<string, number>();
    for (const t of tools) wanted.set(t.name, (wanted.get(t.name) ?? 0) + 1);
    for (const [toolName, entries] of old) {
      const n = wanted.get(toolName) ?? 0;
      if (n > 0) kept.set(toolName, entries.slice(0, n));
      for (let i = n; i < entries.length; i++) this.#byName.delete(entries[i]!.name);
    }
    return kept;
  }

  /** Names `server`'s current tools: kept names first, then free ones for new tools. */
  #name(server: string, kept: Map<string, PoolTool[]>): void {
    const config = this.#configs.get(server);
    const entries: PoolTool[] = [];
    const byTool = new Map<string, PoolTool[]>();
    this.#entries.set(server, entries);
    this.#byTool.set(server, byTool);
    if (!config) return;
    for (const original of this.#tools.get(server) ?? []) {
      // Excluded tools and tools that can only run as tasks are never given names.
      if (!exposed(config, original)) continue;
      let same = byTool.get(original.name);
      if (!same) byTool.set(original.name, (same = []));
      const occurrence = same.length;
      const name = kept.get(original.name)?.[occurrence]?.name ?? this.#freeName(config, original.name, occurrence);
      const description = config.tools.overrides?.[original.name]?.description;
      const entry: PoolTool = { name, server, tool: description === undefined ? original : { ...original, description } };
      same.push(entry);
      entries.push(entry);
      this.#byName.set(name, entry);
    }
  }

  #freeName(server: ServerConfig, toolName: string, occurrence: number): string {
    // A session's view names a tool its base lists as the base does.
    const inBase = this.#base ? this.#base.#byTool.get(server.name)?.get(toolName)?.[occurrence]?.name : undefined;
    if (inBase !== undefined && !this.#byName.has(inBase)) return inBase;
    const preferred = poolName(server, toolName);
    if (this.#free(preferred)) return preferred;
    const fallback = `${server.name}${NAME_SEPARATOR}${toolName}`;
    if (this.#free(fallback)) return fallback;
    let n = this.#nextSuffix.get(fallback) ?? 2;
    while (!this.#free(`${fallback}_${n}`)) n++;
    this.#nextSuffix.set(fallback, n + 1);
    return `${fallback}_${n}`;
  }

  #free(name: string): boolean {
    return !this.#byName.has(name) && !(this.#base && this.#base.#byName.has(name));
  }

  version(server: string): number {
    return this.#versions.get(server) ?? 0;
  }

  /** True once `server` has listed its tools here (a session's view: in that session). */
  has(server: string): boolean {
    return this.#tools.has(server);
  }

  resolve(name: string): PoolTool | undefined {
    const own = this.#byName.get(name);
    if (own || !this.#base) return own;
    const entry = this.#base.resolve(name);
    // The base's entry for a server this view lists itself is not this view's.
    return entry && !this.#entries.has(entry.server) ? entry : undefined;
  }

  list(): PoolTool[] {
    const list: PoolTool[] = [];
    for (const s of this.#servers) {
      const own = this.#entries.get(s.name);
      if (own) list.push(...own);
      else if (this.#base) for (const e of this.#base.#entries.get(s.name) ?? []) if (!this.#byName.has(e.name)) list.push(e);
    }
    return list;
  }

  count(server: string): number {
    return this.#entries.get(server)?.length ?? 0;
  }
}

function sameTools(a: readonly Tool[], b: readonly Tool[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}

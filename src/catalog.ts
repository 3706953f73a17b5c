/**
 * The tool catalog: pool-wide unique names for every server's tools, rebuilt whenever a server's
 * tool list changes (list_changed, reopen, worker replacement). Pure: no threads, no I/O.
 */
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
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
  const { include, exclude } = server.tools;
  if (include && !include.includes(tool.name)) return false;
  return !exclude?.includes(tool.name);
}

/**
 * Builds the catalog from each server's current tools. Servers earlier in the config keep a
 * contested name; a later server's tool falls back to `<server>__<tool>`, then to a numbered name.
 */
export function buildCatalog(servers: readonly ServerConfig[], toolsByServer: ReadonlyMap<string, readonly Tool[]>): PoolTool[] {
  const taken = new Set<string>();
  const entries: PoolTool[] = [];
  for (const server of servers) {
    for (const original of toolsByServer.get(server.name) ?? []) {
      if (!exposed(server, original)) continue;
      let name = poolName(server, original.name);
      if (taken.has(name)) name = `${server.name}${NAME_SEPARATOR}${original.name}`;
      for (let n = 2; taken.has(name); n++) name = `${server.name}${NAME_SEPARATOR}${original.name}_${n}`;
      taken.add(name);
      const description = server.tools.overrides?.[original.name]?.description;
      entries.push({ name, server: server.name, tool: description === undefined ? original : { ...original, description } });
    }
  }
  return entries;
}

/** Versioned per server: every change to a server's tools bumps its version. */
export class Catalog {
  readonly #servers: readonly ServerConfig[];
  readonly #tools = new Map<string, readonly Tool[]>();
  readonly #versions = new Map<string, number>();
  #entries: PoolTool[] = [];
  #byName = new Map<string, PoolTool>();

  constructor(servers: readonly ServerConfig[]) {
    this.#servers = servers;
  }

  /** Records a server's current tools. Returns true when the exposed set changed. */
  update(server: string, tools: readonly Tool[]): boolean {
    const before = this.#tools.get(server);
    this.#versions.set(server, (this.#versions.get(server) ?? 0) + 1);
    if (before && sameTools(before, tools)) return false;
    this.#tools.set(server, tools);
    this.#entries = buildCatalog(this.#servers, this.#tools);
    this.#byName = new Map(this.#entries.map((e) => [e.name, e]));
    return true;
  }

  version(server: string): number {
    return this.#versions.get(server) ?? 0;
  }

  has(server: string): boolean {
    return this.#tools.has(server);
  }

  resolve(name: string): PoolTool | undefined {
    return this.#byName.get(name);
  }

  list(): PoolTool[] {
    return this.#entries.slice();
  }

  count(server: string): number {
    let n = 0;
    for (const e of this.#entries) if (e.server === server) n++;
    return n;
  }
}

function sameTools(a: readonly Tool[], b: readonly Tool[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}

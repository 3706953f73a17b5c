/**
 * The catalogs: what every server lists (tools, prompts, resources, resource templates) as the pool offers
 * it, updated whenever a server's lists change (list_changed, reopen, worker replacement). Pure: no
 * threads, no I/O.
 *
 * Naming (tools and prompts, each kind in a namespace of its own): an item is offered `<prefix>__<name>`
 * (or its alias, or its bare name with prefix ""); when that is taken, `<server>__<name>`, then
 * `<server>__<name>_2`, `_3`, ... A name once handed out keeps meaning the same item while its server
 * lists that item: a server that lists later never takes it over. Until the pool is ready (`seal()`),
 * contested names go to the server listed first in the config, so that names do not depend on which
 * server started faster. Resources keep their URI and templates are listed as they are; two servers may
 * list the same URI (`routeUri` picks one).
 *
 * One concern in one file (a little over 400 lines, a third of them types and notes): the four kinds share
 * one class, `Kind`, parametrised by `KindRules`; `Catalogs` is the thin front the main thread calls.
 */
import type { Prompt, Resource, ResourceTemplateType as ResourceTemplate, Tool } from "@modelcontextprotocol/client";
import type { Catalogs as Lists } from "./common/protocol.js";
import type { ServerConfig } from "./config.js";
import { matchesUriTemplate } from "./uri-template.js";

export interface PoolTool {
  /** Unique across the pool's tools; stable for as long as the server keeps the tool. */
  name: string;
  /** The configured server name. */
  server: string;
  /** The server's own MCP Tool object (original name intact; description replaced when overridden). */
  tool: Tool;
}

export interface PoolPrompt {
  /** Unique across the pool's prompts; stable for as long as the server keeps the prompt. */
  name: string;
  /** The configured server name. */
  server: string;
  /** The server's own MCP Prompt object (original name intact; description replaced when overridden). */
  prompt: Prompt;
}

export interface PoolResource {
  /** The resource's URI, as the server listed it. */
  uri: string;
  /** The configured server name. */
  server: string;
  /** The server's own MCP Resource object. */
  resource: Resource;
}

export interface PoolResourceTemplate {
  /** The configured server name. */
  server: string;
  /** The server's own MCP ResourceTemplate object. */
  resourceTemplate: ResourceTemplate;
}

/** What `Catalogs.update` reports as changed; `resources` covers resource templates too. */
export type CatalogKind = "tools" | "prompts" | "resources";

export const NAME_SEPARATOR = "__";

/** What one kind of list differs in; everything else (views, versions, naming, filters) is shared. */
interface KindRules<T, E> {
  /** The item's own key: the name (tools, prompts), URI (resources) or URI template (templates) that `include`/`exclude` name. */
  key(item: T): string;
  /** The config block of this kind. */
  filter(server: ServerConfig): { include?: string[] | undefined; exclude?: string[] | undefined; overrides?: Record<string, { alias?: string | undefined; description?: string | undefined }> | undefined };
  /** Named kinds get unique pool names (tools, prompts); the others keep their key. */
  named: boolean;
  /** Beyond include/exclude: whether the pool can offer the item at all. */
  usable?(item: T): boolean;
  entry(name: string, server: string, item: T, description: string | undefined): E;
  /** The pool name of an entry (its key, for kinds that are not named). */
  name(entry: E): string;
}

const TOOLS: KindRules<Tool, PoolTool> = {
  key: (tool) => tool.name,
  filter: (server) => server.tools,
  named: true,
  // A tool that must run as an MCP task (task augmentation) cannot be called with a plain tools/call,
  // and the pool does not run tasks yet: it is not listed rather than listed and refused on every call.
  usable: (tool) => (tool as { execution?: { taskSupport?: unknown } }).execution?.taskSupport !== "required",
  entry: (name, server, tool, description) => ({ name, server, tool: description === undefined ? tool : { ...tool, description } }),
  name: (entry) => entry.name,
};

const PROMPTS: KindRules<Prompt, PoolPrompt> = {
  key: (prompt) => prompt.name,
  filter: (server) => server.prompts,
  named: true,
  entry: (name, server, prompt, description) => ({ name, server, prompt: description === undefined ? prompt : { ...prompt, description } }),
  name: (entry) => entry.name,
};

const RESOURCES: KindRules<Resource, PoolResource> = {
  key: (resource) => resource.uri,
  filter: (server) => server.resources,
  named: false,
  entry: (uri, server, resource) => ({ uri, server, resource }),
  name: (entry) => entry.uri,
};

const TEMPLATES: KindRules<ResourceTemplate, PoolResourceTemplate> = {
  key: (template) => template.uriTemplate,
  filter: (server) => server.resources,
  named: false,
  entry: (_key, server, resourceTemplate) => ({ server, resourceTemplate }),
  name: (entry) => entry.resourceTemplate.uriTemplate,
};

/** The pool name an item of a named kind gets before collisions are resolved. */
function preferredName<T, E>(rules: KindRules<T, E>, server: ServerConfig, key: string): string {
  const alias = rules.filter(server).overrides?.[key]?.alias;
  if (alias) return alias;
  return server.prefix ? `${server.prefix}${NAME_SEPARATOR}${key}` : key;
}

function exposed<T, E>(rules: KindRules<T, E>, server: ServerConfig, item: T): boolean {
  if (rules.usable && !rules.usable(item)) return false;
  const { include, exclude } = rules.filter(server);
  const key = rules.key(item);
  if (include && !include.includes(key)) return false;
  return !exclude?.includes(key);
}

/**
 * One kind's catalog. Once sealed, updating one server costs that server's items only (before, while the
 * pool starts, every listed server's).
 *
 * With a `base`, it is one session's view: its own lists for the servers it has listed (its
 * session-scoped servers) over the base's lists for the others, named as the base names the same items,
 * and never giving its own items a name the base hands out. A name this view handed out first stays
 * this view's, even if the base hands it out later (its entry is then hidden in this view).
 */
class Kind<T, E extends { server: string }> {
  readonly #rules: KindRules<T, E>;
  readonly #servers: readonly ServerConfig[];
  readonly #configs: ReadonlyMap<string, ServerConfig>;
  readonly #base: Kind<T, E> | undefined;
  readonly #lists = new Map<string, readonly T[]>();
  /** Each server's entries, in its list's order. */
  readonly #entries = new Map<string, E[]>();
  /** Each server's entries by the item's key (a server may list one key several times). */
  readonly #byKey = new Map<string, Map<string, E[]>>();
  /** Named kinds: every entry by its pool name. */
  readonly #byName = new Map<string, E>();
  /** The next numbered suffix worth trying per fallback name: keeps naming linear in the number of items. */
  readonly #nextSuffix = new Map<string, number>();
  #sealed: boolean;

  constructor(rules: KindRules<T, E>, servers: readonly ServerConfig[], configs: ReadonlyMap<string, ServerConfig>, base: Kind<T, E> | undefined) {
    this.#rules = rules;
    this.#servers = servers;
    this.#configs = configs;
    this.#base = base;
    this.#sealed = base !== undefined;
  }

  seal(): void {
    this.#sealed = true;
  }

  /**
   * Records a server's current list. Returns true when it changed from what was seen before: the server's
   * last list, or in a session's view that had none of its own yet, the base's.
   */
  update(server: string, items: readonly T[]): boolean {
    const before = this.#lists.get(server);
    // One comparison per list: a long list is serialized to compare it.
    if (before && sameList(before, items)) return false;
    this.#lists.set(server, items);
    if (!this.#rules.named) this.#index(server, new Map());
    else if (this.#sealed) this.#index(server, this.#release(server, items));
    else this.#rebuild();
    if (before) return true;
    const base = this.#base ? this.#base.#lists.get(server) : undefined;
    return !(base && sameList(base, items));
  }

  /** Names every server's items afresh, in config order (before the catalog is sealed: nothing is handed out yet). */
  #rebuild(): void {
    this.#byName.clear();
    this.#nextSuffix.clear();
    for (const s of this.#servers) if (this.#lists.has(s.name)) this.#index(s.name, new Map());
  }

  /**
   * Frees the names of `server`'s entries that `items` no longer lists; returns those it still lists, by
   * key, in occurrence order, to keep their names.
   */
  #release(server: string, items: readonly T[]): Map<string, E[]> {
    const kept = new Map<string, E[]>();
    const old = this.#byKey.get(server);
    if (!old) return kept;
    const wanted = new Map<string, number>();
    for (const item of items) {
      const key = this.#rules.key(item);
      wanted.set(key, (wanted.get(key) ?? 0) + 1);
    }
    for (const [key, entries] of old) {
      const n = wanted.get(key) ?? 0;
      if (n > 0) kept.set(key, entries.slice(0, n));
      for (let i = n; i < entries.length; i++) this.#byName.delete(this.#rules.name(entries[i]!));
    }
    return kept;
  }

  /** Makes `server`'s entries from its current list: named kinds keep kept names first, then take free ones. */
  #index(server: string, kept: Map<string, E[]>): void {
    const rules = this.#rules;
    const config = this.#configs.get(server);
    const entries: E[] = [];
    const byKey = new Map<string, E[]>();
    this.#entries.set(server, entries);
    this.#byKey.set(server, byKey);
    if (!config) return;
    const overrides = rules.filter(config).overrides;
    for (const item of this.#lists.get(server) ?? []) {
      // Excluded and unusable items are never given names, listed or routed to.
      if (!exposed(rules, config, item)) continue;
      const key = rules.key(item);
      let same = byKey.get(key);
      if (!same) byKey.set(key, (same = []));
      let name = key;
      if (rules.named) {
        const occurrence = same.length;
        const keptEntry = kept.get(key)?.[occurrence];
        name = keptEntry ? rules.name(keptEntry) : this.#freeName(config, key, occurrence);
      }
      const entry = rules.entry(name, server, item, overrides?.[key]?.description);
      same.push(entry);
      entries.push(entry);
      if (rules.named) this.#byName.set(name, entry);
    }
  }

  #freeName(server: ServerConfig, key: string, occurrence: number): string {
    // A session's view names an item its base lists as the base does.
    const inBase = this.#base ? this.#base.#byKey.get(server.name)?.get(key)?.[occurrence] : undefined;
    if (inBase !== undefined) {
      const name = this.#rules.name(inBase);
      if (!this.#byName.has(name)) return name;
    }
    const preferred = preferredName(this.#rules, server, key);
    if (this.#free(preferred)) return preferred;
    const fallback = `${server.name}${NAME_SEPARATOR}${key}`;
    if (this.#free(fallback)) return fallback;
    let n = this.#nextSuffix.get(fallback) ?? 2;
    while (!this.#free(`${fallback}_${n}`)) n++;
    this.#nextSuffix.set(fallback, n + 1);
    return `${fallback}_${n}`;
  }

  #free(name: string): boolean {
    return !this.#byName.has(name) && !(this.#base && this.#base.#byName.has(name));
  }

  /** True once `server` has listed this kind here (a session's view: in that session). */
  has(server: string): boolean {
    return this.#lists.has(server);
  }

  /** True once `server` has listed this kind here or, in a view, in the base. */
  known(server: string): boolean {
    return this.#lists.has(server) || (this.#base?.known(server) ?? false);
  }

  resolve(name: string): E | undefined {
    const own = this.#byName.get(name);
    if (own || !this.#base) return own;
    const entry = this.#base.resolve(name);
    // The base's entry for a server this view lists itself is not this view's.
    return entry && !this.#entries.has(entry.server) ? entry : undefined;
  }

  list(): E[] {
    const list: E[] = [];
    for (const s of this.#servers) {
      const own = this.#entries.get(s.name);
      if (own) list.push(...own);
      else if (this.#base) {
        for (const e of this.#base.#entries.get(s.name) ?? []) if (!this.#rules.named || !this.#byName.has(this.#rules.name(e))) list.push(e);
      }
    }
    return list;
  }

  /** A server's entries by key as this catalog sees them: its own, else (in a view) the base's. */
  keyed(server: string): ReadonlyMap<string, E[]> | undefined {
    return this.#byKey.get(server) ?? this.#base?.keyed(server);
  }

  count(server: string): number {
    return this.#entries.get(server)?.length ?? 0;
  }
}

function sameList(a: readonly unknown[], b: readonly unknown[]): boolean {
  return a.length === b.length && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Every kind's catalog, versioned per server: every update of a server bumps its version. With a `base`,
 * one session's view over the pool's catalogs (see Kind).
 */
export class Catalogs {
  readonly #servers: readonly ServerConfig[];
  readonly #tools: Kind<Tool, PoolTool>;
  readonly #prompts: Kind<Prompt, PoolPrompt>;
  readonly #resources: Kind<Resource, PoolResource>;
  readonly #templates: Kind<ResourceTemplate, PoolResourceTemplate>;
  readonly #versions = new Map<string, number>();

  constructor(servers: readonly ServerConfig[], base?: Catalogs) {
    this.#servers = servers;
    const configs = new Map(servers.map((s) => [s.name, s]));
    this.#tools = new Kind(TOOLS, servers, configs, base && base.#tools);
    this.#prompts = new Kind(PROMPTS, servers, configs, base && base.#prompts);
    this.#resources = new Kind(RESOURCES, servers, configs, base && base.#resources);
    this.#templates = new Kind(TEMPLATES, servers, configs, base && base.#templates);
  }

  /** From now on a name once handed out stays with its item (until then, config order decides). */
  seal(): void {
    this.#tools.seal();
    this.#prompts.seal();
    this.#resources.seal();
    this.#templates.seal();
  }

  /** Records what a server listed (any subset of the four lists); returns the kinds whose entries changed. */
  update(server: string, lists: Partial<Lists>): CatalogKind[] {
    this.#versions.set(server, (this.#versions.get(server) ?? 0) + 1);
    const changed: CatalogKind[] = [];
    if (lists.tools && this.#tools.update(server, lists.tools)) changed.push("tools");
    if (lists.prompts && this.#prompts.update(server, lists.prompts)) changed.push("prompts");
    const resources = lists.resources !== undefined && this.#resources.update(server, lists.resources);
    const templates = lists.resourceTemplates !== undefined && this.#templates.update(server, lists.resourceTemplates);
    if (resources || templates) changed.push("resources");
    return changed;
  }

  /** True once `server` has listed its tools here (a session's view: in that session). */
  has(server: string): boolean {
    return this.#tools.has(server);
  }

  version(server: string): number {
    return this.#versions.get(server) ?? 0;
  }

  resolveTool(name: string): PoolTool | undefined {
    return this.#tools.resolve(name);
  }

  resolvePrompt(name: string): PoolPrompt | undefined {
    return this.#prompts.resolve(name);
  }

  tools(): PoolTool[] {
    return this.#tools.list();
  }

  prompts(): PoolPrompt[] {
    return this.#prompts.list();
  }

  resources(): PoolResource[] {
    return this.#resources.list();
  }

  resourceTemplates(): PoolResourceTemplate[] {
    return this.#templates.list();
  }

  toolCount(server: string): number {
    return this.#tools.count(server);
  }

  /** The server a URI routes to: the first configured server that listed that exact URI, else the first whose template matches it. */
  routeUri(uri: string): string | undefined {
    for (const s of this.#servers) if (this.#resources.keyed(s.name)?.has(uri)) return s.name;
    for (const s of this.#servers) {
      const templates = this.#templates.keyed(s.name);
      if (templates) for (const template of templates.keys()) if (matchesUriTemplate(template, uri)) return s.name;
    }
    return undefined;
  }

  /** The server a not-yet-listed pool name would belong to (by its prefix or an alias), with the server's own name for it. */
  unlistedOwner(kind: "tools" | "prompts", name: string): { server: string; name: string } | undefined {
    const catalog = kind === "tools" ? this.#tools : this.#prompts;
    for (const server of this.#servers) {
      if (catalog.known(server.name)) continue;
      const filter = kind === "tools" ? server.tools : server.prompts;
      let own: string | undefined;
      for (const [original, o] of Object.entries(filter.overrides ?? {})) {
        if (o.alias === name) {
          own = original;
          break;
        }
      }
      if (own === undefined && server.prefix && name.startsWith(server.prefix + NAME_SEPARATOR)) own = name.slice(server.prefix.length + NAME_SEPARATOR.length);
      if (own === undefined) continue;
      if ((filter.include && !filter.include.includes(own)) || filter.exclude?.includes(own)) continue;
      return { server: server.name, name: own };
    }
    return undefined;
  }
}

/**
 * The tool catalog built from each server's current tools at once (sealed, then listed in config order):
 * servers earlier in the config keep a contested name; a later server's tool falls back to
 * `<server>__<tool>`, then to a numbered name.
 */
export function buildCatalog(servers: readonly ServerConfig[], toolsByServer: ReadonlyMap<string, readonly Tool[]>): PoolTool[] {
  const catalogs = new Catalogs(servers);
  catalogs.seal();
  for (const server of servers) {
    const tools = toolsByServer.get(server.name);
    if (tools) catalogs.update(server.name, { tools: [...tools] });
  }
  return catalogs.tools();
}

/**
 * A connection's catalogs: what its server lists (tools, resources, resource templates, prompts), read
 * at every connect and again on list_changed; and what the request path needs of the tools (their
 * inputSchema validators, the tools that mirror arguments into HTTP headers).
 *
 * Every item is checked on its own: the SDK's list methods parse a whole page at once (its listTools()
 * also compiles every outputSchema), so one unusable item (an inputSchema whose type is not "object", a
 * missing name) made the whole server unusable. Such an item is skipped with a warning (a log on the
 * main thread); the others are kept.
 */
import { specTypeSchemas, type JsonSchemaValidator, type LoggingLevel, type StandardSchemaV1, type Tool } from "@modelcontextprotocol/client";
import type { Catalogs, ConnectionSpec } from "../src/common/protocol.js";
import { messageOf } from "./http-calls.js";
import type { Link } from "./link.js";
import { safeJson } from "./methods.js";
import { ListingValidators } from "./validators.js";

/** What a list_changed names: templates go with resources. */
export type ListKind = "tools" | "resources" | "prompts";
export const LIST_KINDS: readonly ListKind[] = ["tools", "resources", "prompts"];

/** What the listings need of their host. */
export interface ListingHost {
  readonly spec: ConnectionSpec;
  /** The link requests go to now. */
  current(): Link | undefined;
  /** The connection is ready: catalogs changed now go to the main thread (before, `connect` reports them). */
  ready(): boolean;
  changed(catalogs: Partial<Catalogs>): void;
  log(level: LoggingLevel, data: string): void;
}

type CatalogKey = keyof Catalogs;

interface ListSpec {
  method: "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list";
  member: CatalogKey;
  item: StandardSchemaV1["~standard"];
  /** What the warning calls one item, and the member that names it. */
  noun: string;
  key: string;
}

const LISTS: Record<CatalogKey, ListSpec> = {
  tools: { method: "tools/list", member: "tools", item: specTypeSchemas.Tool["~standard"], noun: "tool", key: "name" },
  resources: { method: "resources/list", member: "resources", item: specTypeSchemas.Resource["~standard"], noun: "resource", key: "uri" },
  resourceTemplates: { method: "resources/templates/list", member: "resourceTemplates", item: specTypeSchemas.ResourceTemplate["~standard"], noun: "resource template", key: "uriTemplate" },
  prompts: { method: "prompts/list", member: "prompts", item: specTypeSchemas.Prompt["~standard"], noun: "prompt", key: "name" },
};

/** A hostile server could page forever. */
const MAX_PAGES = 1_000;
/** Unusable items reported one by one per listing; the rest in one line. */
const MAX_SKIP_WARNINGS = 10;

export class Listings {
  readonly #host: ListingHost;
  #catalogs: Catalogs = { tools: [], resources: [], resourceTemplates: [], prompts: [] };
  #validators = new Map<string, JsonSchemaValidator<unknown> | null>();
  /** Tools whose inputSchema mirrors arguments into HTTP headers (`x-mcp-header`, 2026-07-28 over HTTP). */
  #headerTools = new Set<string>();
  /** Compiled inputSchemas of the current listing; a new listing starts afresh (see validators.ts). */
  #schemas = new ListingValidators();
  /** Per kind, a refresh under way, and whether a notification came meanwhile (see refresh). */
  #refreshing: Partial<Record<ListKind, Promise<void>>> = {};
  #again: Partial<Record<ListKind, boolean>> = {};
  /** Per kind, the link whose server last said the list changed. */
  #for: Partial<Record<ListKind, Link>> = {};

  constructor(host: ListingHost) {
    this.#host = host;
  }

  get catalogs(): Catalogs {
    return this.#catalogs;
  }

  /**
   * Everything `link`'s server lists: the tools always (a failure fails the connect, as it always did),
   * resources, templates and prompts only when it declares the capability (a failure there costs that
   * list, with a warning, not the connection).
   */
  async listAll(link: Link): Promise<Catalogs> {
    const caps = link.client.getServerCapabilities() ?? {};
    const [tools, resources, resourceTemplates, prompts] = await Promise.all([
      this.#list(link, "tools"),
      caps.resources ? this.#lenient(link, "resources") : [],
      caps.resources ? this.#lenient(link, "resourceTemplates") : [],
      caps.prompts ? this.#lenient(link, "prompts") : [],
    ]);
    const catalogs = { tools: tools as Tool[], resources, resourceTemplates, prompts } as Catalogs;
    this.#set(catalogs);
    return catalogs;
  }

  /**
   * After list_changed for `kind` on `link`: list again; notifications that arrive meanwhile cause one
   * more listing. Before the link is ready (a notification during the connect's own listing), the kind is
   * noted on the link and listed once it is (see `flushStale`).
   */
  refresh(link: Link, kind: ListKind): void {
    if (!this.#host.ready() || link !== this.#host.current()) {
      if (!link.closed) link.stale.add(kind);
      return;
    }
    this.#for[kind] = link;
    if (this.#refreshing[kind]) {
      this.#again[kind] = true;
      return;
    }
    this.#refreshing[kind] = (async () => {
      do {
        this.#again[kind] = false;
        // The link of the latest notification: one that came on a new link while a listing on the one
        // before it was failing is not lost with it.
        const target = this.#for[kind];
        if (!target || target !== this.#host.current() || target.closed) continue;
        try {
          const changed = kind === "resources"
            ? { resources: await this.#list(target, "resources"), resourceTemplates: await this.#list(target, "resourceTemplates") }
            : { [kind]: await this.#list(target, kind) };
          if (target !== this.#host.current() || target.closed) continue;
          this.#set({ ...this.#catalogs, ...changed } as Catalogs);
          this.#host.changed(changed as Partial<Catalogs>);
        } catch {
          // a dead link is reopened, and reopening lists everything anyway; a live one lists at its next notification
        }
      } while (this.#again[kind]);
    })().finally(() => (this.#refreshing[kind] = undefined));
  }

  /** `link` is ready: lists what changed while it was getting there. */
  flushStale(link: Link): void {
    const kinds = [...link.stale];
    link.stale.clear();
    for (const kind of kinds) this.refresh(link, kind);
  }

  /** Every kind the server declares, listed again (its listen stream ended: what changed meanwhile is not known). */
  refreshAll(link: Link): void {
    const caps = link.client.getServerCapabilities() ?? {};
    this.refresh(link, "tools");
    if (caps.resources) this.refresh(link, "resources");
    if (caps.prompts) this.refresh(link, "prompts");
  }

  toolOf(name: string): Tool | undefined {
    return this.#catalogs.tools.find((t) => t.name === name);
  }

  /** Whether the tool mirrors arguments into `Mcp-Param-*` headers (SEP-2243). */
  hasHeaders(name: string): boolean {
    return this.#headerTools.has(name);
  }

  /** Why `args` do not match the tool's inputSchema, or nothing. */
  validate(name: string, args: Record<string, unknown>): string | undefined {
    let validator = this.#validators.get(name);
    if (validator === undefined) {
      const tool = this.toolOf(name);
      validator = null;
      if (tool?.inputSchema) {
        try {
          validator = this.#schemas.compile(tool.inputSchema as never);
        } catch {
          validator = null; // a schema ajv cannot compile is the server's problem, not a reason to refuse calls
        }
      }
      this.#validators.set(name, validator);
    }
    if (!validator) return undefined;
    const result = validator(args);
    return result.valid ? undefined : result.errorMessage;
  }

  #set(catalogs: Catalogs): void {
    if (catalogs.tools !== this.#catalogs.tools) {
      this.#headerTools = new Set(catalogs.tools.filter((t) => declaresHeader(t.inputSchema)).map((t) => t.name));
      this.#validators.clear();
      this.#schemas = new ListingValidators();
    }
    this.#catalogs = catalogs;
  }

  /** A list the connection does without when it fails: empty, with a warning, unless the link itself went. */
  async #lenient<K extends CatalogKey>(link: Link, key: K): Promise<Catalogs[K]> {
    try {
      return await this.#list(link, key);
    } catch (error) {
      if (link.closed || link.reason) throw error;
      this.#host.log("warning", `${LISTS[key].method} failed, listed as empty: ${messageOf(error)}`);
      return [] as Catalogs[K];
    }
  }

  /** All pages of one list, each item checked on its own. */
  async #list<K extends CatalogKey>(link: Link, key: K): Promise<Catalogs[K]> {
    const spec = LISTS[key];
    const items: unknown[] = [];
    let skipped = 0;
    let cursor: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const res = await link.client.request({ method: spec.method, params: cursor === undefined ? {} : { cursor } }, PAGES[key], { timeout: this.#host.spec.connectTimeoutMs });
      for (const raw of res.items) {
        const parsed = spec.item.validate(raw);
        if (parsed instanceof Promise) continue; // the SDK's spec schemas are synchronous
        if (parsed.issues === undefined) items.push(parsed.value);
        else if (++skipped <= MAX_SKIP_WARNINGS) this.#host.log("warning", `${spec.noun} ${labelOf(raw, spec.key)} skipped: ${issuesOf(parsed.issues)}`);
      }
      cursor = res.nextCursor;
      if (!cursor) break;
    }
    // A hostile list of thousands of unusable items costs the main thread one more message, not thousands.
    if (skipped > MAX_SKIP_WARNINGS) this.#host.log("warning", `${skipped - MAX_SKIP_WARNINGS} more unusable ${spec.noun}s skipped`);
    return items as Catalogs[K];
  }
}

/**
 * A page of a list, checked only as a page: its items are checked one by one (#list). The SDK's own
 * check of the result refuses the whole page for one bad item.
 */
function pageSchema(member: string): StandardSchemaV1<unknown, { items: unknown[]; nextCursor?: string }> {
  return {
    "~standard": {
      version: 1,
      vendor: "mcp-worker-pool",
      validate(value) {
        const page = value as Record<string, unknown> | null;
        if (typeof page !== "object" || page === null || !Array.isArray(page[member])) return { issues: [{ message: `list result has no ${member} array` }] };
        if (page.nextCursor !== undefined && typeof page.nextCursor !== "string") return { issues: [{ message: "nextCursor is not a string", path: ["nextCursor"] }] };
        return { value: { items: page[member] as unknown[], ...(page.nextCursor ? { nextCursor: page.nextCursor as string } : {}) } };
      },
    },
  };
}

const PAGES: Record<CatalogKey, ReturnType<typeof pageSchema>> = {
  tools: pageSchema("tools"),
  resources: pageSchema("resources"),
  resourceTemplates: pageSchema("resourceTemplates"),
  prompts: pageSchema("prompts"),
};

/** Whether a tool's inputSchema declares an argument mirrored into an `Mcp-Param-*` header (SEP-2243). */
function declaresHeader(schema: unknown): boolean {
  const properties = (schema as { properties?: unknown } | null)?.properties;
  if (typeof properties !== "object" || properties === null) return false;
  for (const property of Object.values(properties)) if (typeof property === "object" && property !== null && "x-mcp-header" in property) return true;
  return false;
}

/** A skipped item as a warning names it: by its name (or URI) if it has one. */
function labelOf(raw: unknown, key: string): string {
  const name = (raw as Record<string, unknown> | null)?.[key];
  return typeof name === "string" ? JSON.stringify(name) : `(unnamed: ${safeJson(raw)})`;
}

/** Why an item was refused, briefly: the first few problems, each with where it is. */
function issuesOf(issues: ReadonlyArray<StandardSchemaV1.Issue>): string {
  return issues
    .slice(0, 3)
    .map((i) => (i.path?.length ? `${i.path.map((p) => String(typeof p === "object" ? p.key : p)).join(".")}: ${i.message}` : i.message))
    .join("; ");
}

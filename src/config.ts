/**
 * The pool's configuration. The zod schemas here are the single source of the config types:
 * `PoolConfigInput` is what users pass, `PoolConfig` the validated config with every default filled in.
 */
import { z } from "zod";
import { McpPoolError } from "./errors.js";

/** Whole numbers: counts and sizes. Durations use `timerMs`. */
const ms = (min = 0) => z.number().int().min(min);

/** The longest delay Node's timers honour; a longer one fires at once (with a TimeoutOverflowWarning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A duration in whole milliseconds that a timer can wait for: every `…Ms` option. */
const timerMs = (min = 0) => z.number().int().min(min).max(MAX_TIMER_MS, { message: `must be at most ${MAX_TIMER_MS} ms (about 24.8 days, the longest timer Node runs)` });

/**
 * Every record of the config (servers, env, headers, overrides). z.record drops a `"__proto__"` key
 * without a word (JSON.parse makes it an own key; assigning it would set the record's prototype), so
 * a server, variable or header of that name would vanish: it is refused instead, naming its path.
 */
function record<V extends z.ZodType>(key: z.ZodString, value: V) {
  const schema = z.record(key, value);
  return z.preprocess((input: z.input<typeof schema>, ctx) => {
    if (input !== null && typeof input === "object" && Object.hasOwn(input, "__proto__")) {
      ctx.addIssue({ code: "custom", path: ["__proto__"], message: '"__proto__" cannot be a name here', input });
    }
    return input;
  }, schema);
}

/**
 * Reopening a lost connection: exponential backoff with full jitter, then slow probes.
 *
 * The defaults ride out an ordinary restart of a server (a deploy, a crash and respawn) of up to about
 * 10 s without giving up: the delays before the 15 attempts are drawn below 0.25, 0.5, 1, 2, then 4 s,
 * about 24 s in all on average, and less than 10 s only about once in 10,000 losses. (The former 5
 * attempts from 100 ms were spent in about 1.5 s, so a server down for 3 s was left to the 30 s probe.)
 * A restarted server is found again at most `maxDelayMs` after it is back.
 */
export const ReconnectSchema = z.strictObject({
  /** Attempts after a loss before the connection is `failed` (calls then fail at once with SERVER_UNAVAILABLE). Default 15. */
  maxAttempts: ms(0).default(15),
  /** Upper bound of the first backoff delay; each further one doubles it, up to `maxDelayMs`. Default 250 ms. */
  initialDelayMs: timerMs(0).default(250),
  /** Cap on any backoff delay. Default 4,000 ms. */
  maxDelayMs: timerMs(0).default(4_000),
  /** Once `failed`, one attempt this often brings the server back when it can start again. Default 30,000 ms. */
  probeIntervalMs: timerMs(1).default(30_000),
});

/** Pings from the worker; a server that misses `failures` pings in a row is treated as dead. */
export const KeepaliveSchema = z.strictObject({
  /** Ping interval; 0 disables keepalive. Default 15,000 ms. */
  intervalMs: timerMs(0).default(15_000),
  /** How long one ping may take. Default 5,000 ms. */
  timeoutMs: timerMs(1).default(5_000),
  /** Missed pings in a row that mark the server as hung. Default 2. */
  failures: ms(1).default(2),
});

/** The first revision of the stateless era (`server/discover`, no `initialize`). */
export const FIRST_MODERN_REVISION = "2026-07-28";

const ProtocolSchema = z.string().superRefine((v, ctx) => {
  if (v === "auto" || v === "legacy") return;
  if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    ctx.addIssue({ code: "custom", message: 'must be "auto", "legacy" or a protocol revision such as "2026-07-28"', input: v });
  } else if (v < FIRST_MODERN_REVISION) {
    ctx.addIssue({ code: "custom", message: `pins a revision of the stateless era (${FIRST_MODERN_REVISION} or later); for the handshake era (up to 2025-11-25) use "legacy"`, input: v });
  }
});

/** Per item (by the server's own name): a different pool name and/or description. */
const OverridesSchema = record(
  z.string(),
  z.strictObject({
    /** The pool name, instead of `<prefix>__<name>`; when another item of the same kind holds it, the `<server>__<name>` fallback applies. */
    alias: z.string().min(1).optional(),
    /** Replaces the item's description in the pool's listing (the server's own is unchanged). */
    description: z.string().optional(),
  }),
);

export const ToolFilterSchema = z.strictObject({
  /** Only these tools (server-side names) are exposed. Default: all. */
  include: z.array(z.string().min(1)).optional(),
  /** These tools (server-side names) are hidden. Default: none. */
  exclude: z.array(z.string().min(1)).optional(),
  /** Per tool (server-side name): a different pool name and/or description. */
  overrides: OverridesSchema.optional(),
});

/** Which prompts of a server the pool lists and how it names them: the same rules as tools, in a namespace of their own. */
export const PromptFilterSchema = z.strictObject({
  /** Only these prompts (server-side names) are listed; `getPrompt` of any other is PROMPT_NOT_FOUND. Default: all. */
  include: z.array(z.string().min(1)).optional(),
  /** These prompts (server-side names) are hidden; `getPrompt` of one is PROMPT_NOT_FOUND. Default: none. */
  exclude: z.array(z.string().min(1)).optional(),
  /** Per prompt (server-side name): a different pool name and/or description. An alias may equal a tool's pool name. */
  overrides: OverridesSchema.optional(),
});

/**
 * Which resources and resource templates of a server the pool lists and routes `readResource` to. Resources
 * keep their URI (no prefix, no alias). An entry names a resource's `uri` or a template's `uriTemplate`, exactly.
 */
export const ResourceFilterSchema = z.strictObject({
  /** Only these resource URIs and URI templates are listed and routed. Default: all. */
  include: z.array(z.string().min(1)).optional(),
  /** These resource URIs and URI templates are neither listed nor routed to this server. Default: none. */
  exclude: z.array(z.string().min(1)).optional(),
});

/** How a server is reached: a child process, Streamable HTTP, or legacy SSE. */
const TransportSchema = z.enum(["stdio", "http", "sse"]);

/** Where a stdio server's stderr goes. */
const StderrSchema = z.enum(["inherit", "ignore"]);

const ServerInputSchema = z
  .strictObject({
    /** `stdio` is inferred from `command`, `http` (Streamable HTTP) from `url`; `sse` forces legacy SSE. */
    transport: TransportSchema.optional(),
    /** Synonym of `transport`, as written in common MCP client config files. */
    type: z.enum(["stdio", "http", "streamable-http", "streamableHttp", "sse"]).optional(),
    command: z.string().min(1).optional(),
    args: z.array(z.string()).optional(),
    /** Extra environment for a stdio server, on top of a minimal safe set (PATH, HOME, USER, SHELL, TERM, LOGNAME). */
    env: record(z.string(), z.string()).optional(),
    cwd: z.string().min(1).optional(),
    /** Where a stdio server's stderr goes. Default `inherit` (the host's stderr). */
    stderr: StderrSchema.optional(),
    url: z.url({ protocol: /^https?$/ }).optional(),
    headers: record(z.string(), z.string()).optional(),
    /** `shared` servers serve every caller from replicas; `session` servers get one connection per session. */
    scope: z.enum(["shared", "session"]).default("shared"),
    /** Replicas of a shared server. Default `{ min: 1, max: min, idleTimeoutMs: 30000 }`. */
    connections: z
      .strictObject({
        /** Replicas kept open at all times. Default 1. */
        min: ms(0).default(1),
        /** Replicas opened at most, when every open one is at `limits.maxInFlightPerConnection`. Default `min`. */
        max: ms(1).optional(),
        /** A replica above `min` with no call for this long is closed (its worker and process end). Default 30,000 ms. */
        idleTimeoutMs: timerMs(1).default(30_000),
      })
      .prefault({}),
    /** Deadline of a call when the caller gives none. Default 60,000 ms. */
    toolCallTimeoutMs: timerMs(1).default(60_000),
    /** Deadline of one connect attempt (spawn or HTTP, initialize, tools/list). Default 10,000 ms. */
    connectTimeoutMs: timerMs(1).default(10_000),
    reconnect: ReconnectSchema.prefault({}),
    keepalive: KeepaliveSchema.prefault({}),
    /**
     * Which MCP era to speak. `auto` (default): probe once with `server/discover` (2026-07-28 and later), fall
     * back to the `initialize` handshake; the verdict is reused by every later connection of the server.
     * `legacy`: the `initialize` handshake only (up to 2025-11-25). A revision such as `"2026-07-28"`: that
     * revision of the stateless era and nothing else (a server that does not offer it is unavailable).
     */
    protocol: ProtocolSchema.default("auto"),
    /** Retry a call lost to a crash once, for tools annotated read-only or idempotent (`safe`), or never. Default `safe`. */
    retry: z.enum(["safe", "never"]).default("safe"),
    /** Which tools are exposed and under which pool names. Default: all, as `<prefix>__<tool>`. */
    tools: ToolFilterSchema.prefault({}),
    /** Which prompts are listed and under which pool names (as tools). Default: all, as `<prefix>__<prompt>`. */
    prompts: PromptFilterSchema.prefault({}),
    /** Which resources and resource templates are listed and routed. Default: all. */
    resources: ResourceFilterSchema.prefault({}),
    /** Pool names of tools and prompts are `<prefix>__<name>`; default prefix is the server name; `""` exposes bare names. */
    prefix: z.string().optional(),
  })
  .superRefine((s, ctx) => {
    const kind = s.transport ?? (s.type === "stdio" ? "stdio" : s.type === "sse" ? "sse" : s.type ? "http" : undefined);
    if (s.command && s.url) ctx.addIssue({ code: "custom", path: ["url"], message: "give either command (stdio) or url (http/sse), not both" });
    else if (!s.command && !s.url) ctx.addIssue({ code: "custom", path: ["command"], message: "a server needs either command (stdio) or url (http/sse)" });
    else if (s.command && kind && kind !== "stdio") ctx.addIssue({ code: "custom", path: ["transport"], message: `transport "${kind}" needs url, not command` });
    else if (s.url && kind === "stdio") ctx.addIssue({ code: "custom", path: ["transport"], message: 'transport "stdio" needs command, not url' });
    if (s.url) {
      for (const key of ["args", "env", "cwd", "stderr"] as const) {
        if (s[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: `only stdio servers take ${key}` });
      }
    }
    if (s.command && s.headers !== undefined) ctx.addIssue({ code: "custom", path: ["headers"], message: "only http/sse servers take headers" });
    if (s.connections.max !== undefined && s.connections.max < s.connections.min) {
      ctx.addIssue({ code: "custom", path: ["connections", "max"], message: `must be >= connections.min (${s.connections.min})` });
    }
    if (s.scope === "session" && (s.connections.max ?? 1) > 1) {
      ctx.addIssue({ code: "custom", path: ["connections"], message: "session servers have one connection per session; connections applies to shared servers" });
    }
  });

export const LimitsSchema = z.strictObject({
  /** Worker threads (one per connection, shared and session together). Default 32. */
  maxWorkers: ms(1).default(32),
  /** Open sessions; a new one past this is refused with SESSION_LIMIT after idle ones are evicted. Default 200. */
  maxSessions: ms(1).default(200),
  /** Calls waiting for a connection; past this a call fails at once with POOL_EXHAUSTED. Default 1,000. */
  maxQueue: ms(0).default(1_000),
  /** How long a call may wait in the queue before POOL_EXHAUSTED. Default 10,000 ms. */
  acquireTimeoutMs: timerMs(1).default(10_000),
  /** Calls in flight on one connection before another replica is used or calls queue. Default 64. */
  maxInFlightPerConnection: ms(1).default(64),
  /**
   * At the worker cap, a session connection is evicted to make room for another only once it has been idle
   * this long, so that sessions calling back to back do not take each other's connections (and server-side
   * state) between calls; the new connection waits meanwhile (up to acquireTimeoutMs). Default 5,000 ms.
   */
  minIdleBeforeEvictionMs: timerMs(0).default(5_000),
  /** Sessions idle this long are closed. Default 600,000 ms (10 min). */
  sessionIdleTimeoutMs: timerMs(1).default(600_000),
  /** Heap cap of each worker (piscina `resourceLimits`); a worker over it dies alone. Default 256 MB. */
  workerHeapMb: ms(16).default(256),
  /**
   * CPU niceness (0..19) of worker threads and the stdio servers they start (Linux; elsewhere ignored).
   * Above 0, tool traffic yields the CPU to the host's own threads when cores are short, at some cost
   * to its own throughput then. Default 0: the host's priority.
   */
  workerNice: z.number().int().min(0).max(19).default(0),
  /** Largest single message accepted from a server; larger fails the call with RESULT_TOO_LARGE. Default 32 MB. */
  maxMessageMb: z.number().positive().default(32),
  /** How long `close()` lets calls in flight finish before tearing connections down. Default 5,000 ms. */
  drainTimeoutMs: timerMs(0).default(5_000),
  /**
   * While calls are in flight on a connection, the main thread pings its worker over the port; a worker
   * that does not answer for this long is wedged (e.g. by an argument that makes schema validation
   * backtrack forever): it is terminated and replaced like a crashed one, its calls fail with
   * CONNECTION_LOST and it counts as a worker crash. Well above any legitimate synchronous stretch of a
   * worker (decoding a large message, a garbage collection near its heap cap). 0 disables it. Default 10,000 ms.
   */
  workerHeartbeatMs: timerMs(0)
    .refine((v) => v === 0 || v >= 100, "must be 0 (off) or at least 100 ms")
    .default(10_000),
});

/** An HTTP header name (RFC 9110 token). */
const HeaderName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { message: "must be an HTTP header name" });

/**
 * The gateway (`mcp-worker-pool serve`, `serveGateway`): ignored by `createPool` itself. See docs/gateway.md.
 */
export const GatewaySchema = z.strictObject({
  /** Bearer tokens a request must present, any one of them; without any (here or in MCP_POOL_TOKENS) there is no auth. */
  tokens: z.array(z.string().min(1)).optional(),
  /** Request headers passed on to the client's session-scoped servers (e.g. `["authorization"]`). Default: none. */
  forwardHeaders: z.array(HeaderName).optional(),
  /** Interface to bind. Default `127.0.0.1`. */
  host: z.string().min(1).optional(),
  /** TCP port (0: any free one). Default 3000. */
  port: z.number().int().min(0).max(65535).optional(),
  /** Browser origins allowed in (hostnames or `<scheme>://*`). Default: localhost origins only. */
  allowedOrigins: z.array(z.string().min(1)).optional(),
});

const PoolInputSchema = z
  .strictObject({
    servers: record(z.string().min(1), ServerInputSchema).optional(),
    /** Synonym of `servers`, so a common MCP client config file loads as is. */
    mcpServers: record(z.string().min(1), ServerInputSchema).optional(),
    limits: LimitsSchema.prefault({}),
    /** The gateway's own settings (`mcp-worker-pool serve`); the pool ignores them. */
    gateway: GatewaySchema.optional(),
  })
  .superRefine((c, ctx) => {
    if (c.servers && c.mcpServers) ctx.addIssue({ code: "custom", path: ["mcpServers"], message: "give servers or mcpServers, not both" });
    const servers = c.servers ?? c.mcpServers;
    if (!servers || Object.keys(servers).length === 0) {
      ctx.addIssue({ code: "custom", path: [c.mcpServers && !c.servers ? "mcpServers" : "servers"], message: "at least one server is required" });
      return;
    }
    let minWorkers = 0;
    for (const s of Object.values(servers)) if (s.scope === "shared") minWorkers += s.connections.min;
    // Session servers (and shared ones with min 0) list their tools through a short-lived connection at start.
    if (Object.values(servers).some((s) => s.scope === "session" || s.connections.min === 0)) minWorkers++;
    if (minWorkers > c.limits.maxWorkers) {
      ctx.addIssue({ code: "custom", path: ["limits", "maxWorkers"], message: `is ${c.limits.maxWorkers} but the servers need ${minWorkers} connections at start (sum of connections.min, plus one to list the tools of session servers)` });
    }
  });

/**
 * The resolved config: every default filled in, one `transport`, the server's name and prefix set, and the
 * shape a connection needs. Its output type is `PoolConfig`; `ServerConfig` is one of its servers.
 */
export const PoolConfigSchema = PoolInputSchema.transform((c) => {
  const servers: Record<string, ReturnType<typeof resolveServer>> = {};
  for (const [name, s] of Object.entries((c.servers ?? c.mcpServers)!)) servers[name] = resolveServer(name, s);
  const resolved: { servers: typeof servers; limits: typeof c.limits; gateway?: z.output<typeof GatewaySchema> } = { servers, limits: c.limits };
  if (c.gateway !== undefined) resolved.gateway = c.gateway;
  return resolved;
});

/** One server's entry of the resolved config; its return type is `ServerConfig`. */
function resolveServer(name: string, s: z.output<typeof ServerInputSchema>) {
  const transport: z.output<typeof TransportSchema> = s.command ? "stdio" : s.transport === "sse" || s.type === "sse" ? "sse" : "http";
  const stderr: z.output<typeof StderrSchema> = s.stderr ?? "inherit";
  const args: string[] = s.args ?? [];
  const env: Record<string, string> = s.env ?? {};
  const headers: Record<string, string> = s.headers ?? {};
  return {
    name,
    transport,
    command: s.command,
    args,
    env,
    cwd: s.cwd,
    stderr,
    url: s.url,
    headers,
    scope: s.scope,
    connections: {
      min: s.scope === "session" ? 0 : s.connections.min,
      max: s.scope === "session" ? 1 : Math.max(1, s.connections.max ?? s.connections.min),
      idleTimeoutMs: s.connections.idleTimeoutMs,
    },
    toolCallTimeoutMs: s.toolCallTimeoutMs,
    connectTimeoutMs: s.connectTimeoutMs,
    reconnect: s.reconnect,
    keepalive: s.keepalive,
    /** `auto`, `legacy`, or a pinned revision of the stateless era. */
    protocol: s.protocol,
    retry: s.retry,
    tools: s.tools,
    prompts: s.prompts,
    resources: s.resources,
    prefix: s.prefix ?? name,
  };
}

export type PoolConfigInput = z.input<typeof PoolInputSchema>;
export type ServerConfigInput = z.input<typeof ServerInputSchema>;
export type LimitsInput = z.input<typeof LimitsSchema>;
export type GatewayConfig = z.output<typeof GatewaySchema>;
export type Limits = z.output<typeof LimitsSchema>;

export type PoolConfig = z.output<typeof PoolConfigSchema>;
/** A server's resolved config: the type the schema's transform produces, not a copy of it. */
export type ServerConfig = PoolConfig["servers"][string];

function formatIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      const path = issue.path.map(String);
      if (issue.code === "unrecognized_keys") {
        return issue.keys.map((k) => `${[...path, k].join(".")}: unknown key`).join("; ");
      }
      return `${path.length ? path.join(".") : "(config)"}: ${issue.message}`;
    })
    .join("; ");
}

/**
 * Validates a pool config and fills in every default.
 * @throws McpPoolError `CONFIG_INVALID`, whose message names every offending path.
 */
export function parseConfig(input: unknown): PoolConfig {
  const parsed = PoolConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new McpPoolError("CONFIG_INVALID", `invalid pool config: ${formatIssues(parsed.error)}`, {
      data: parsed.error.issues.map((i) => ({ path: i.path.map(String), message: i.message })),
    });
  }
  return parsed.data;
}

/** `pool.stats()`: a fresh, plain snapshot summed from the parts. */
import type { Catalogs } from "./catalogs.js";
import type { Limits, ServerConfig } from "./config.js";
import type { ConnectionState } from "./common/protocol.js";
import type { ServerGroup } from "./server-group.js";

export interface ConnectionStats {
  id: string;
  sessionId?: string;
  state: ConnectionState;
  pid?: number;
  threadId?: number;
  inFlight: number;
  calls: number;
  restarts: number;
}

export interface ServerStats {
  state: ConnectionState;
  /** The protocol version in use (e.g. "2025-11-25"); absent before the first connect. */
  protocolVersion?: string;
  tools: number;
  connections: ConnectionStats[];
}

export interface PoolStats {
  workers: { active: number; max: number; queued: number };
  sessions: { active: number; max: number };
  calls: { total: number; ok: number; failed: number; inFlight: number; queued: number };
  crashes: { server: number; worker: number };
  servers: Record<string, ServerStats>;
}

export interface StatsSource {
  limits: Limits;
  servers: readonly ServerConfig[];
  slots: number;
  slotQueue: number;
  sessions: number;
  counts: { total: number; ok: number; failed: number; inFlight: number; serverCrashes: number; workerCrashes: number };
  queued: number;
  catalogs: Catalogs;
  closed: boolean;
  groupsOf(server: string): ServerGroup[];
  discoveryState(server: string): ConnectionState | undefined;
  protocolVersion(server: string): string | undefined;
}

/** The server's state is its best connection's: ready beats connecting beats reconnecting beats failed. */
const RANK: ConnectionState[] = ["ready", "connecting", "reconnecting", "closing", "failed", "closed"];

export function snapshot(src: StatsSource): PoolStats {
  const servers: Record<string, ServerStats> = {};
  for (const server of src.servers) {
    const connections: ConnectionStats[] = [];
    for (const group of src.groupsOf(server.name)) {
      for (const c of group.connections) {
        const entry: ConnectionStats = { id: c.id, state: c.state, inFlight: c.inFlight, calls: c.calls, restarts: c.restarts };
        if (c.sessionId !== undefined) entry.sessionId = c.sessionId;
        if (c.pid !== undefined) entry.pid = c.pid;
        if (c.threadId !== undefined) entry.threadId = c.threadId;
        connections.push(entry);
      }
    }
    let state: ConnectionState = src.closed ? "closed" : src.discoveryState(server.name) ?? (connections.length ? "closed" : "ready");
    if (connections.length > 0) state = connections.map((c) => c.state).sort((a, b) => RANK.indexOf(a) - RANK.indexOf(b))[0]!;
    const entry: ServerStats = { state, tools: src.catalogs.toolCount(server.name), connections };
    const protocolVersion = src.protocolVersion(server.name);
    if (protocolVersion !== undefined) entry.protocolVersion = protocolVersion;
    servers[server.name] = entry;
  }
  return {
    workers: { active: src.slots, max: src.limits.maxWorkers, queued: src.slotQueue },
    sessions: { active: src.sessions, max: src.limits.maxSessions },
    calls: { total: src.counts.total, ok: src.counts.ok, failed: src.counts.failed, inFlight: src.counts.inFlight, queued: src.queued },
    crashes: { server: src.counts.serverCrashes, worker: src.counts.workerCrashes },
    servers,
  };
}

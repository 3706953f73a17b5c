/**
 * What the benchmark reports: the figures (one Summary per subject), the ratio of each pool
 * subject to the plain client of its era (v1 `sdk` on the legacy fixture, v2 `sdk-v2@2026` on the
 * 2026-07-28 one), the targets (met or missed), and their text renderings: one table per fixture.
 */
import { round, spreadPercent, type Summary } from "./stats.js";
import { baselineOf, POOL_SUBJECTS, replicasOf, SUBJECTS, type Era, type FigureSubject, type SubjectName } from "./subjects.js";

export interface FigureDef {
  key: string;
  label: string;
  unit: "µs" | "ms" | "calls/s" | "MB" | "%";
  /** `info`: context for reading other rows (no better or worse, no ratio). */
  better: "lower" | "higher" | "info";
}

export interface Figure extends FigureDef {
  subjects: Partial<Record<FigureSubject, Summary>>;
  /** median(pool subject) ÷ median(the plain client of its era: `baselineOf`), where both exist; the gateway's ÷ the plain proxy's. */
  ratios: Partial<Record<FigureSubject, number>>;
  /** The floor of each pool subject's figure, measured in the same run (`floorsOf`), where it has one. */
  floors: Partial<Record<SubjectName, number>>;
  /** median(pool subject) ÷ its floor. */
  floorRatios: Partial<Record<SubjectName, number>>;
  /** How the floor is made, for the notes. */
  floorRule?: string;
}

export interface Target {
  id: string;
  description: string;
  subject: FigureSubject;
  /** What was compared with the limit: a ratio (×) or an absolute value (with unit). */
  value: number;
  limit: number;
  unit: string;
  /** False when this run did not produce the figure (a phase left out, or it failed). */
  measured: boolean;
  met: boolean;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  arch: string;
  totalMemMb: number;
  /** 1, 5 and 15 minute load averages when the run ended: other work on the machine skews every figure. */
  loadavg: number[];
  loadavgAtStart: number[];
  date: string;
}

export interface Results {
  mode: string;
  machine: MachineInfo;
  settings: Record<string, unknown>;
  durationMs: number;
  complete: boolean;
  figures: Record<string, Figure>;
  reference: Record<string, Summary & { label: string; unit: string }>;
  targets: Target[];
  errors: string[];
  notes: string[];
}

/** Each subject that gets a ratio, and what it is divided by. */
const RATIO_PAIRS: [FigureSubject, FigureSubject][] = [...POOL_SUBJECTS.map((p): [FigureSubject, FigureSubject] => [p, baselineOf(p)]), ["gateway", "plain-proxy"]];

export function withRatios(def: FigureDef, subjects: Partial<Record<FigureSubject, Summary>>): Figure {
  const ratios: Partial<Record<FigureSubject, number>> = {};
  if (def.better === "info") return { ...def, subjects, ratios, floors: {}, floorRatios: {} };
  for (const [name, baseline] of RATIO_PAIRS) {
    const base = subjects[baseline]?.median;
    const v = subjects[name]?.median;
    // A baseline of zero or less (an SDK client adds no RSS beyond its server) has no meaningful ratio.
    if (base !== undefined && v !== undefined && Number.isFinite(base) && Number.isFinite(v) && base > 0) ratios[name] = round(v / base, 3);
  }
  return { ...def, subjects, ratios, floors: {}, floorRatios: {} };
}

// ---------------------------------------------------------------------------- floors

/**
 * What each figure cannot go below (above, for throughput) on this machine in this run, whatever the
 * pool does: the plain client's own figure plus what the thread hop costs with no pool code in it
 * (a bare worker over a MessagePort, floors.ts). `(pool, medians) → floor`; undefined when an input
 * was not measured.
 */
type FloorRule = { rule: string; of: (pool: SubjectName, base: (key: string) => number | undefined, ref: (key: string) => number | undefined, cores: number) => number | undefined };

const sum = (...v: (number | undefined)[]) => (v.every((x) => x !== undefined && Number.isFinite(x)) ? v.reduce<number>((a, b) => a + b!, 0) : undefined);

export const FLOOR_RULES: Record<string, FloorRule> = {
  latency_p50_us: { rule: "plain client's p50 + bare port round trip p50", of: (_, base, ref) => sum(base("latency_p50_us"), ref("port_rtt_us")) },
  throughput_64_cps: { rule: "the plain client's", of: (_, base) => base("throughput_64_cps") },
  throughput_burn_cps: {
    rule: "min(cores, replicas) × the plain client's (one server)",
    of: (pool, base, _, cores) => {
      const one = base("throughput_burn_cps");
      return one === undefined ? undefined : Math.min(cores, replicasOf(pool)) * one;
    },
  },
  host_cpu_10b_us: { rule: "the plain client's", of: (_, base) => base("host_cpu_10b_us") },
  host_cpu_10kb_us: { rule: "the plain client's", of: (_, base) => base("host_cpu_10kb_us") },
  host_cpu_100kb_us: { rule: "the plain client's", of: (_, base) => base("host_cpu_100kb_us") },
  busy_10b_us: { rule: "bare worker, 10 B each way, awaited", of: (_, __, ref) => ref("bare_busy_10b_us") },
  busy_10kb_us: { rule: "bare worker, 10 KB each way, awaited", of: (_, __, ref) => ref("bare_busy_10kb_us") },
  busy_100kb_us: { rule: "bare worker, 100 KB each way, awaited", of: (_, __, ref) => ref("bare_busy_100kb_us") },
  cpu_10b_us: { rule: "bare worker, 10 B each way, awaited", of: (_, __, ref) => ref("bare_cpu_10b_us") },
  cpu_10kb_us: { rule: "bare worker, 10 KB each way, awaited", of: (_, __, ref) => ref("bare_cpu_10kb_us") },
  cpu_100kb_us: { rule: "bare worker, 100 KB each way, awaited", of: (_, __, ref) => ref("bare_cpu_100kb_us") },
  connect_ms: { rule: "plain client's connect + a bare worker's start", of: (_, base, ref) => sum(base("connect_ms"), ref("bare_worker_start_ms")) },
  rss_beyond_server_mb: { rule: "a bare worker with the same resourceLimits, beyond the host", of: (_, __, ref) => ref("bare_worker_rss_mb") },
  rss_beyond_server_early_mb: { rule: "a bare worker, 1 s after its start", of: (_, __, ref) => ref("bare_worker_rss_early_mb") },
};

/** Fills in each figure's floors and floor ratios from the same run's figures and references. */
export function withFloors(figures: Record<string, Figure>, reference: Results["reference"], cores: number): void {
  const ref = (key: string) => finite(reference[key]?.median);
  for (const [key, figure] of Object.entries(figures)) {
    const rule = FLOOR_RULES[key];
    if (!rule) continue;
    figure.floorRule = rule.rule;
    for (const pool of POOL_SUBJECTS) {
      const v = figure.subjects[pool]?.median;
      if (v === undefined || !Number.isFinite(v)) continue;
      const base = (k: string) => finite(figures[k]?.subjects[baselineOf(pool)]?.median);
      const floor = rule.of(pool, base, ref, cores);
      if (floor === undefined || !Number.isFinite(floor)) continue;
      figure.floors[pool] = round(floor, 3);
      if (floor > 0) figure.floorRatios[pool] = round(v / floor, 3);
    }
  }
}

const finite = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? v : undefined);

function target(id: string, description: string, subject: FigureSubject, value: number | undefined, limit: number, unit: string, ok: (v: number, l: number) => boolean): Target {
  const v = value ?? Number.NaN;
  const measured = Number.isFinite(v) && Number.isFinite(limit);
  return { id, description, subject, value: round(v, 3), limit: round(limit, 3), unit, measured, met: measured && ok(v, limit) };
}

const le = (v: number, l: number) => v <= l;
const ge = (v: number, l: number) => v >= l;

/** The pools each per-connection target is held to: one replica, on each fixture. */
const ONE_REPLICA: SubjectName[] = ["pool-1", "pool-1@2026"];

/**
 * The targets (issue 19), evaluated on this run's figures and floors: each per-connection target
 * for the one-replica pool of each fixture that was measured; the replicas target for two replicas.
 */
export function evaluateTargets(figures: Record<string, Figure>, reference: Results["reference"]): Target[] {
  const r = (key: string, s: FigureSubject) => figures[key]?.ratios[s];
  const fr = (key: string, s: SubjectName) => figures[key]?.floorRatios[s];
  const fl = (key: string, s: SubjectName) => figures[key]?.floors[s];
  const m = (key: string, s: SubjectName) => figures[key]?.subjects[s]?.median;
  const measuredPools = POOL_SUBJECTS.filter((s) => Object.values(figures).some((f) => f.subjects[s] !== undefined));
  const targets: Target[] = [];
  for (const s of ONE_REPLICA.filter((p) => (measuredPools as readonly SubjectName[]).includes(p))) {
    const plain = baselineOf(s) === "sdk" ? "the plain client" : "the plain v2 client";
    targets.push(target(`latency-p50 ${s}`, `sequential echo p50 ≤ 1.1× its floor (${s})`, s, fr("latency_p50_us", s), 1.1, "×", le));
    targets.push(target(`host-cpu-10b ${s}`, `host CPU per call, 10 B, ≤ 1.2× ${plain}'s (${s})`, s, r("host_cpu_10b_us", s), 1.2, "×", le));
    targets.push(target(`host-cpu-100kb ${s}`, `host CPU per call, 100 KB, ≤ 1.2× ${plain}'s (${s})`, s, r("host_cpu_100kb_us", s), 1.2, "×", le));
    for (const [size, label] of [["10b", "10 B"], ["10kb", "10 KB"], ["100kb", "100 KB"]] as const) {
      targets.push(target(`busy-${size} ${s}`, `main-thread busy per call, ${label}, ≤ 1.5× its floor (${s})`, s, fr(`busy_${size}_us`, s), 1.5, "×", le));
    }
    targets.push(target(`connect ${s}`, `connect ≤ its floor + 20 ms (${s})`, s, m("connect_ms", s), (fl("connect_ms", s) ?? Number.NaN) + 20, "ms", le));
    targets.push(target(`throughput-1 ${s}`, `throughput, echo, 64 in flight, one connection ≥ 1.0× ${plain}'s (${s})`, s, r("throughput_64_cps", s), 1, "×", ge));
    targets.push(target(`eld-100kb ${s}`, `event-loop delay p99 under 100 KB load ≤ 0.5× ${plain}'s (${s})`, s, r("eld_p99_100kb_ms", s), 0.5, "×", le));
  }
  for (const s of measuredPools) {
    const v = m("rss_beyond_server_mb", s);
    if (v !== undefined) targets.push(target(`rss ${s}`, `RSS per idle connection beyond the server ≤ its floor + 3 MB (${s})`, s, v, (fl("rss_beyond_server_mb", s) ?? Number.NaN) + 3, "MB", le));
  }
  for (const s of (["pool-2", "pool-2@2026"] as const).filter((p) => measuredPools.includes(p))) {
    targets.push(target(`replicas ${s}`, `throughput on the 1 ms-CPU tool, two replicas ≥ 1.7× one plain client (${s})`, s, r("throughput_burn_cps", s), 1.7, "×", ge));
  }
  const cold = reference.cold_start_ms?.median;
  // The gateway scenario (issue 17): the gateway against the plain SDK v2 proxy, measured in the same run.
  if (figures.gw_cpu_100kb_us?.subjects.gateway) {
    targets.push(target("gateway-cpu-100kb", "gateway main-thread CPU per 100 KB call ≤ 0.25× the plain proxy's (gateway)", "gateway", r("gw_cpu_100kb_us", "gateway"), 0.25, "×", le));
    for (const [size, label] of [["10b", "10 B"], ["100kb", "100 KB"]] as const) {
      targets.push(target(`gateway-throughput-${size}`, `gateway throughput, ${label} results, 64 in flight ≥ 1.0× the plain proxy's (gateway)`, "gateway", r(`gw_throughput_${size}_cps`, "gateway"), 1, "×", ge));
    }
  }
  const recovery = m("recovery_ms", "pool-1");
  if (cold !== undefined && recovery !== undefined) {
    targets.push(target("recovery", `recovery after kill -9 ≤ server cold start (${round(cold, 1)} ms) + 50 ms (pool-1)`, "pool-1", recovery, cold + 50, "ms", le));
  }
  const coldModern = reference.cold_start_modern_ms?.median;
  const recoveryModern = m("recovery_ms", "pool-1@2026");
  if (coldModern !== undefined && recoveryModern !== undefined) {
    targets.push(target("recovery@2026", `recovery after kill -9 ≤ 2026-07-28 server cold start (${round(coldModern, 1)} ms) + 50 ms (pool-1@2026)`, "pool-1@2026", recoveryModern, coldModern + 50, "ms", le));
  }
  return targets;
}

// ---------------------------------------------------------------------------- rendering

interface Column {
  subject: FigureSubject;
  title: string;
  /** Title of the ratio column after it (pools only). */
  ratio?: string;
}

/** A table: one per fixture, and the gateway scenario's. */
export type TableId = Era | "gateway";

/** One table per fixture; a pool's ratio is to the plain client of the same table. The gateway's has no floors. */
const TABLES: { era: TableId; title: string; columns: Column[]; floors: boolean }[] = [
  {
    era: "legacy",
    title: "Legacy fixture (test/fixtures/server.ts: v1 SDK server, `initialize` handshake)",
    columns: [
      { subject: "sdk", title: "SDK Client" },
      { subject: "langchain", title: "LangChain adapters" },
      { subject: "pool-1", title: "pool ×1", ratio: "÷ SDK" },
      { subject: "pool-2", title: "pool ×2", ratio: "÷ SDK" },
      { subject: "pool-4", title: "pool ×4", ratio: "÷ SDK" },
    ],
    floors: true,
  },
  {
    era: "modern",
    title: "2026-07-28 fixture (test/fixtures/modern-server.ts: v2 SDK server, stateless era)",
    columns: [
      { subject: "sdk-v2@2026", title: "SDK v2 Client @2026" },
      { subject: "pool-1@2026", title: "pool ×1 @2026", ratio: "÷ SDK v2" },
      { subject: "pool-2@2026", title: "pool ×2 @2026", ratio: "÷ SDK v2" },
    ],
    floors: true,
  },
  {
    era: "gateway",
    title: "Gateway (downstream v1 SDK client over Streamable HTTP → gateway or plain SDK v2 proxy → legacy fixture over stdio; CPU is the gateway/proxy process's)",
    columns: [
      { subject: "plain-proxy", title: "plain SDK v2 proxy" },
      { subject: "gateway", title: "gateway (pool ×1)", ratio: "÷ proxy" },
    ],
    floors: false,
  },
];

export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "—";
  const abs = Math.abs(v);
  const digits = abs >= 1000 ? 0 : abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  const text = v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  return unit === "calls/s" ? `${text}/s` : unit === "%" ? `${text}%` : `${text} ${unit}`;
}

function cell(s: Summary | undefined, unit: string): string {
  if (!s || !Number.isFinite(s.median)) return "—";
  const spread = spreadPercent(s);
  const pm = s.rounds.length > 1 && Number.isFinite(spread) ? ` ±${spread < 10 ? spread.toFixed(1) : spread.toFixed(0)}%` : "";
  return `${formatValue(s.median, unit)}${pm}`;
}

function ratioCell(v: number | undefined): string {
  return v === undefined || !Number.isFinite(v) ? "—" : `${v < 0.1 ? v.toFixed(3) : v.toFixed(2)}×`;
}

/**
 * Header and rows of one fixture's table, as plain strings: the figures that some subject of that
 * table has (memory and scaling, for instance, exist on the legacy fixture only). Just the header
 * when none has any.
 */
export function tableRows(results: Results, era: TableId = "legacy"): string[][] {
  const table = TABLES.find((t) => t.era === era)!;
  const columns = table.columns;
  // The floor column shows the one-replica pool's floor; only the replicas figure's differs between pools.
  const firstPool = columns.find((c) => c.ratio)!.subject;
  const header = ["Figure"];
  for (const c of columns) {
    if (c.subject === firstPool && table.floors) header.push("floor (×1)");
    header.push(c.title);
    if (c.ratio) header.push(c.ratio, ...(table.floors ? ["÷ floor"] : []));
  }
  const rows = [header];
  for (const f of Object.values(results.figures)) {
    if (!columns.some((c) => f.subjects[c.subject] !== undefined)) continue;
    const row = [`${f.label}${f.better === "lower" ? " ↓" : f.better === "higher" ? " ↑" : ""}`];
    for (const c of columns) {
      if (c.subject === firstPool && table.floors) {
        const floor = f.floors?.[firstPool as SubjectName] ?? (f.floorRule ? floorByRule(f, firstPool as SubjectName) : undefined);
        row.push(floor === undefined ? "—" : formatValue(floor, f.unit));
      }
      row.push(cell(f.subjects[c.subject], f.unit));
      if (c.ratio) row.push(ratioCell(f.ratios[c.subject]), ...(table.floors ? [ratioCell(f.floorRatios?.[c.subject as SubjectName])] : []));
    }
    rows.push(row);
  }
  return rows;
}

/** A table's floor when its one-replica pool was left out: the floor of any pool of the same era and replica count, else none. */
function floorByRule(f: Figure, pool: SubjectName): number | undefined {
  const same = Object.entries(f.floors).find(([s]) => baselineOf(s as SubjectName) === baselineOf(pool) && replicasOf(s as SubjectName) === replicasOf(pool));
  return same?.[1];
}

/** The fixtures' tables that have at least one row, with their titles. */
function tables(results: Results): { title: string; rows: string[][] }[] {
  return TABLES.map((t) => ({ title: t.title, rows: tableRows(results, t.era) })).filter((t) => t.rows.length > 1);
}

export function renderText(results: Results): string {
  const out: string[] = [];
  for (const { title, rows } of tables(results)) {
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...r[i]!].length)));
    const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
    if (out.length) out.push("");
    out.push(`${title}:`, line(rows[0]!), widths.map((w) => "─".repeat(w)).join("  "), ...rows.slice(1).map(line));
  }
  out.push("");
  for (const ref of Object.values(results.reference)) out.push(`${ref.label}: ${cell(ref, ref.unit)}`);
  out.push("", "Floors (what each figure cannot beat here, measured in this run):");
  for (const f of Object.values(results.figures)) if (f.floorRule) out.push(`  ${f.label}: ${f.floorRule}`);
  out.push("", "Targets (issue 19: each pool figure against its floor or the plain client of its fixture; issue 17: the gateway against the plain proxy; in this run):");
  for (const t of results.targets) out.push(`  ${verdict(t).padEnd(12)}  ${t.description}: ${formatTarget(t)}`);
  if (results.errors.length) out.push("", "Errors:", ...results.errors.map((e) => `  ${e}`));
  return out.join("\n");
}

function verdict(t: Target): string {
  return t.measured ? (t.met ? "met" : "MISSED") : "not measured";
}

function formatTarget(t: Target): string {
  return t.unit === "×" ? `${ratioCell(t.value)} (limit ${t.limit}×)` : `${formatValue(t.value, t.unit)} (limit ${formatValue(t.limit, t.unit)})`;
}

export function renderMarkdown(results: Results): string {
  const m = results.machine;
  const md = [
    `# mcp-worker-pool benchmark (${results.mode})`,
    "",
    `${m.date} · ${m.cpu} · ${m.cores} cores · ${m.totalMemMb.toLocaleString("en-US")} MB · Node ${m.node} · ${m.platform}/${m.arch} · load average ${m.loadavgAtStart.join(" / ")} at start, ${m.loadavg.join(" / ")} at end`,
    "",
    "Medians over repeated rounds, ± half the min–max spread across rounds; ↓ lower is better, ↑ higher is better.",
    "“÷ SDK” is the pool's median divided by the plain SDK client's median in the same run; on the 2026-07-28 fixture,",
    "“÷ SDK v2” divides by the plain v2 Client (`@modelcontextprotocol/client`) pinned to 2026-07-28.",
    "“÷ floor” divides by the figure's floor, measured in the same run (“floor (×1)” shows the one-replica pool's; see Floors below).",
    "“÷ proxy” divides the gateway's median by the plain SDK v2 proxy's (bench/plain-proxy.ts) in the same run.",
    "",
  ];
  for (const { title, rows } of tables(results)) {
    md.push(
      `### ${title}`,
      "",
      `| ${rows[0]!.join(" | ")} |`,
      `|${rows[0]!.map((_, i) => (i === 0 ? " --- " : " ---: ")).join("|")}|`,
      ...rows.slice(1).map((r) => `| ${r.join(" | ")} |`),
      "",
    );
  }
  for (const ref of Object.values(results.reference)) md.push(`${ref.label}: **${cell(ref, ref.unit)}**`, "");
  md.push("## Floors", "", ...Object.values(results.figures).filter((f) => f.floorRule).map((f) => `- ${f.label}: ${f.floorRule}`), "");
  md.push("## Targets", "", "| | target | this run |", "| --- | --- | ---: |");
  for (const t of results.targets) md.push(`| ${t.measured ? (t.met ? "✅ met" : "❌ missed") : "not measured"} | ${t.description} | ${formatTarget(t)} |`);
  md.push("", "## How each figure is measured", "", ...results.notes.map((n) => `- ${n}`));
  if (results.errors.length) md.push("", "## Errors", "", ...results.errors.map((e) => `- ${e}`));
  return md.join("\n") + "\n";
}

export { SUBJECTS };

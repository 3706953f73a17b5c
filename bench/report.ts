/**
 * What the benchmark reports: the figures (one Summary per subject), the ratio of each pool
 * subject to the plain client of its era (v1 `sdk` on the legacy fixture, v2 `sdk-v2@2026` on the
 * 2026-07-28 one), the targets (met or missed), and their text renderings: one table per fixture.
 */
import { round, spreadPercent, type Summary } from "./stats.js";
import { baselineOf, POOL_SUBJECTS, SUBJECTS, type Era, type SubjectName } from "./subjects.js";

export interface FigureDef {
  key: string;
  label: string;
  unit: "µs" | "ms" | "calls/s" | "MB" | "%";
  /** `info`: context for reading other rows (no better or worse, no ratio). */
  better: "lower" | "higher" | "info";
}

export interface Figure extends FigureDef {
  subjects: Partial<Record<SubjectName, Summary>>;
  /** median(pool subject) ÷ median(the plain client of its era: `baselineOf`), where both exist. */
  ratios: Partial<Record<SubjectName, number>>;
}

export interface Target {
  id: string;
  description: string;
  subject: SubjectName;
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

export function withRatios(def: FigureDef, subjects: Partial<Record<SubjectName, Summary>>): Figure {
  const ratios: Partial<Record<SubjectName, number>> = {};
  if (def.better === "info") return { ...def, subjects, ratios };
  for (const name of POOL_SUBJECTS) {
    const base = subjects[baselineOf(name)]?.median;
    const v = subjects[name]?.median;
    // A baseline of zero or less (an SDK client adds no RSS beyond its server) has no meaningful ratio.
    if (base !== undefined && v !== undefined && Number.isFinite(base) && Number.isFinite(v) && base > 0) ratios[name] = round(v / base, 3);
  }
  return { ...def, subjects, ratios };
}

function target(id: string, description: string, subject: SubjectName, value: number | undefined, limit: number, unit: string, ok: (v: number, l: number) => boolean): Target {
  const v = value ?? Number.NaN;
  const measured = Number.isFinite(v) && Number.isFinite(limit);
  return { id, description, subject, value: round(v, 3), limit: round(limit, 3), unit, measured, met: measured && ok(v, limit) };
}

const le = (v: number, l: number) => v <= l;
const ge = (v: number, l: number) => v >= l;
const gt = (v: number, l: number) => v > l;

/**
 * A pooled call is the direct call plus one main ↔ worker round trip: (SDK p50 + that round trip) ÷ SDK p50
 * is the lowest latency ratio this machine allows, whatever the pool does.
 */
function latencyFloor(sdkP50: number | undefined, rtt: number | undefined): string {
  if (sdkP50 === undefined || rtt === undefined || !(sdkP50 > 0) || !Number.isFinite(rtt)) return "";
  return ` (floor on this machine: SDK p50 + one port round trip = ${round((sdkP50 + rtt) / sdkP50, 2)}×)`;
}

/** The targets, evaluated on this run's figures. */
export function evaluateTargets(figures: Record<string, Figure>, reference: Results["reference"]): Target[] {
  const r = (key: string, s: SubjectName) => figures[key]?.ratios[s];
  const m = (key: string, s: SubjectName) => figures[key]?.subjects[s]?.median;
  const targets: Target[] = [
    target("busy-10b", "main-thread busy time per call, 10 B results ≤ 0.35× SDK", "pool-1", r("busy_10b_us", "pool-1"), 0.35, "×", le),
    target("busy-100kb", "main-thread busy time per call, 100 KB results ≤ 0.10× SDK", "pool-1", r("busy_100kb_us", "pool-1"), 0.1, "×", le),
    target("eld-100kb", "event-loop delay p99 under 100 KB load ≤ 0.2× SDK", "pool-1", r("eld_p99_100kb_ms", "pool-1"), 0.2, "×", le),
    target("latency-p50", `sequential echo latency p50 ≤ 1.3× SDK${latencyFloor(m("latency_p50_us", "sdk"), reference.port_rtt_us?.median)}`, "pool-1", r("latency_p50_us", "pool-1"), 1.3, "×", le),
    target("throughput-1", "throughput, 64 in flight, one connection ≥ 0.9× SDK", "pool-1", r("throughput_64_cps", "pool-1"), 0.9, "×", ge),
  ];
  // Whether the server really is the bottleneck shows in how busy the SDK's one server process was.
  const sdkServer = m("server_cpu_serverbound_pct", "sdk");
  const busy = sdkServer === undefined ? "" : ` (SDK's server process at ${round(sdkServer, 0)}% of a core)`;
  for (const s of ["pool-2", "pool-4"] as const) {
    targets.push(target(`throughput-bound-${s}`, `throughput with 100 KB results, ${s.slice(5)} replicas > SDK${busy}`, s, r("throughput_serverbound_cps", s), 1, "×", gt));
  }
  const cold = reference.cold_start_ms?.median ?? Number.NaN;
  targets.push(target("recovery", `recovery after kill -9 ≤ server cold start (${round(cold, 1)} ms) + 50 ms`, "pool-1", m("recovery_ms", "pool-1"), cold + 50, "ms", le));
  // The same bound on the 2026-07-28 fixture, against that server's own cold start; only when measured.
  const coldModern = reference.cold_start_modern_ms?.median;
  const recoveryModern = m("recovery_ms", "pool-1@2026");
  if (coldModern !== undefined && recoveryModern !== undefined) {
    targets.push(target("recovery@2026", `recovery after kill -9 ≤ 2026-07-28 server cold start (${round(coldModern, 1)} ms) + 50 ms (pool-1@2026)`, "pool-1@2026", recoveryModern, coldModern + 50, "ms", le));
  }
  for (const s of POOL_SUBJECTS) {
    const v = m("rss_beyond_server_mb", s);
    if (v !== undefined) targets.push(target(`rss-${s}`, `RSS per idle pooled connection beyond the server ≤ 15 MB (${s})`, s, v, 15, "MB", le));
  }
  return targets;
}

// ---------------------------------------------------------------------------- rendering

interface Column {
  subject: SubjectName;
  title: string;
  /** Title of the ratio column after it (pools only). */
  ratio?: string;
}

/** One table per fixture; a pool's ratio is to the plain client of the same table. */
const TABLES: { era: Era; title: string; columns: Column[] }[] = [
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
  },
  {
    era: "modern",
    title: "2026-07-28 fixture (test/fixtures/modern-server.ts: v2 SDK server, stateless era)",
    columns: [
      { subject: "sdk-v2@2026", title: "SDK v2 Client @2026" },
      { subject: "pool-1@2026", title: "pool ×1 @2026", ratio: "÷ SDK v2" },
      { subject: "pool-2@2026", title: "pool ×2 @2026", ratio: "÷ SDK v2" },
    ],
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
export function tableRows(results: Results, era: Era = "legacy"): string[][] {
  const columns = TABLES.find((t) => t.era === era)!.columns;
  const header = ["Figure"];
  for (const c of columns) {
    header.push(c.title);
    if (c.ratio) header.push(c.ratio);
  }
  const rows = [header];
  for (const f of Object.values(results.figures)) {
    if (!columns.some((c) => f.subjects[c.subject] !== undefined)) continue;
    const row = [`${f.label}${f.better === "lower" ? " ↓" : f.better === "higher" ? " ↑" : ""}`];
    for (const c of columns) {
      row.push(cell(f.subjects[c.subject], f.unit));
      if (c.ratio) row.push(ratioCell(f.ratios[c.subject]));
    }
    rows.push(row);
  }
  return rows;
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
  out.push("", "Targets (pool vs the plain client of its fixture in this run):");
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
  md.push("## Targets", "", "| | target | this run |", "| --- | --- | ---: |");
  for (const t of results.targets) md.push(`| ${t.measured ? (t.met ? "✅ met" : "❌ missed") : "not measured"} | ${t.description} | ${formatTarget(t)} |`);
  md.push("", "## How each figure is measured", "", ...results.notes.map((n) => `- ${n}`));
  if (results.errors.length) md.push("", "## Errors", "", ...results.errors.map((e) => `- ${e}`));
  return md.join("\n") + "\n";
}

export { SUBJECTS };

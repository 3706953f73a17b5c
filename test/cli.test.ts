/**
 * The `mcp-worker-pool` command line, run as a child process on a common `mcpServers` file: exit codes,
 * --help, bad config, `tools`, `call`, and `serve` (health, readiness, metrics, a real client, SIGTERM
 * with nothing left behind).
 */
import test, { type ExecutionContext } from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { FIXTURE_SERVER, isAlive, tmpFile, waitFor, within } from "./helpers/fixtures.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end (bounded), killing it if the test ends first. */
function run(t: ExecutionContext, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  t.teardown(() => void child.kill("SIGKILL"));
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c));
  child.stderr!.on("data", (c: Buffer) => (stderr += c));
  return within(45_000, `mcp-worker-pool ${args.join(" ")}`, new Promise<Run>((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr }))));
}

function configFile(t: ExecutionContext, config: unknown): string {
  const file = tmpFile("cli-config") + ".json";
  writeFileSync(file, JSON.stringify(config));
  t.teardown(() => rmSync(file, { force: true }));
  return file;
}

const MCP_SERVERS = { mcpServers: { fx: { command: process.execPath, args: [FIXTURE_SERVER, "stdio"], stderr: "ignore" } } };

test.serial("--help of every command prints its usage and exits 0", async (t) => {
  for (const args of [["--help"], ["serve", "--help"], ["tools", "--help"], ["call", "--help"]]) {
    const r = await run(t, args);
    t.is(r.code, 0, args.join(" "));
    t.regex(r.stdout, /^Usage: mcp-worker-pool/);
  }
  const bare = await run(t, []);
  t.is(bare.code, 2, "no command is a usage error");
  const unknown = await run(t, ["frobnicate"]);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command frobnicate/);
});

test.serial("a bad config exits 2 with the CONFIG_INVALID message naming each path, before any server starts", async (t) => {
  const file = configFile(t, { mcpServers: { a: { url: "not a url" } }, gateway: { port: 70000, shout: true } });
  const r = await run(t, ["serve", "--config", file]);
  t.is(r.code, 2);
  t.regex(r.stderr, /invalid pool config/);
  t.regex(r.stderr, /mcpServers\.a\.url/);
  t.regex(r.stderr, /gateway\.port/);
  t.regex(r.stderr, /gateway\.shout: unknown key/);
  const missing = await run(t, ["tools"]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--config <file> is required/);
  const notJson = configFile(t, "");
  writeFileSync(notJson, "{ nope");
  t.is((await run(t, ["tools", "--config", notJson])).code, 2);
});

test.serial("tools prints the catalog of a common mcpServers file; call prints a result, or exits 1 with the error code", async (t) => {
  const file = configFile(t, MCP_SERVERS);
  const [tools, ok, unknown, badArgs] = await Promise.all([
    run(t, ["tools", "--config", file]),
    run(t, ["call", "--config", file, "fx__echo", '{"message":"from the cli"}']),
    run(t, ["call", "--config", file, "fx__nothing"]),
    run(t, ["call", "--config", file, "fx__echo", "[1]"]),
  ]);
  t.is(tools.code, 0);
  const list = JSON.parse(tools.stdout) as { name: string; server: string }[];
  t.true(list.some((x) => x.name === "fx__echo" && x.server === "fx"));
  t.is(ok.code, 0);
  t.deepEqual(JSON.parse(ok.stdout).content, [{ type: "text", text: "from the cli" }]);
  t.is(unknown.code, 1);
  t.is(JSON.parse(unknown.stderr.trim().split("\n").pop()!).error.code, "TOOL_NOT_FOUND");
  t.is(badArgs.code, 2);
});

test.serial("serve answers /healthz, /readyz, /metrics and MCP clients; SIGTERM drains and exits 0 with no server left", async (t) => {
  const file = configFile(t, { ...MCP_SERVERS, gateway: { port: 0 } });
  const child: ChildProcess = spawn(process.execPath, [CLI, "serve", "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void child.kill("SIGKILL"));
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  await waitFor(() => /"event":"gateway.listening"/.test(stderr), 40_000);
  const logs = () => stderr.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
  const url = logs().find((e) => e.event === "gateway.listening")!.url as string;
  const base = url.replace(/\/mcp$/, "");
  t.is((await within(5_000, "healthz", fetch(`${base}/healthz`))).status, 200);
  const early = (await within(5_000, "readyz", fetch(`${base}/readyz`))).status;
  await waitFor(() => /"event":"gateway.ready"/.test(stderr), 40_000);
  if (early === 503) t.log("/readyz said 503 while the server started");
  t.is((await within(5_000, "readyz", fetch(`${base}/readyz`))).status, 200);
  const metrics = await within(5_000, "metrics", fetch(`${base}/metrics`));
  t.is(metrics.status, 200);
  t.regex(await metrics.text(), /^# (HELP|TYPE) /m, "Prometheus text");
  t.true(logs().some((e) => e.event === "server.state" && e.server === "fx" && e.state === "ready"));

  const client = new Client({ name: "cli-test", version: "1.0.0" });
  await within(10_000, "connect", client.connect(new StreamableHTTPClientTransport(new URL(url))));
  const pidResult = await within(10_000, "pid", client.callTool({ name: "fx__pid", arguments: {} }));
  const pid = Number((pidResult.content as { text: string }[])[0]!.text);
  t.true(isAlive(pid));
  t.true(logs().some((e) => e.event === "session.open" && e.era === "legacy"));
  // A call in flight when SIGTERM comes is let finish.
  const slow = client.callTool({ name: "fx__slow", arguments: { ms: 300 } });
  await new Promise((r) => setTimeout(r, 50));
  child.kill("SIGTERM");
  const result = await within(10_000, "slow call through the drain", slow);
  t.deepEqual((result.content as { text: string }[])[0]?.text, "done after 300ms");
  t.is(await within(15_000, "exit", exited), 0);
  t.false(isAlive(pid), "the server process is gone");
  t.true(logs().some((e) => e.event === "gateway.closed"));
  await client.close().catch(() => {});
});

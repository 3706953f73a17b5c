/**
 * Issue 17's "done when": a new user runs `mcp-worker-pool serve --config mcp.json` on a common
 * `mcpServers` file and connects the MCP Inspector CLI (`@modelcontextprotocol/inspector-cli`) to it.
 * The CLI and the Inspector both run as child processes, as the README shows them; the Inspector lists
 * the tools and calls two (exit 0, JSON on stdout), an unknown tool exits 1; SIGTERM then drains, exits 0
 * and leaves no server process behind.
 */
import test, { type ExecutionContext } from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { FIXTURE_SERVER, isAlive, tmpFile, waitFor, within } from "./helpers/fixtures.js";

const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
/** The Inspector CLI's bin (`mcp-inspector-cli`, the package's main). */
const INSPECTOR = fileURLToPath(import.meta.resolve("@modelcontextprotocol/inspector-cli"));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs the Inspector CLI to its end (bounded). It starts its own `node` child: both run in a process
 * group of their own, which the teardown kills whole.
 */
function inspector(t: ExecutionContext, args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [INSPECTOR, "--cli", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
    // 1.0.3 reads its own package.json as `../package.json` if that exists relative to the working directory,
    // else `../../package.json` relative to its module, which is right only inside the `@modelcontextprotocol/inspector`
    // package: from its build directory, the first is its own.
    cwd: dirname(INSPECTOR),
    // It finds `node` on the PATH for its child: this one.
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` },
  });
  t.teardown(() => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // the group is gone already
    }
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c));
  child.stderr!.on("data", (c: Buffer) => (stderr += c));
  return within(30_000, `mcp-inspector-cli ${args.join(" ")}`, new Promise<Run>((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr }))));
}

test("the MCP Inspector CLI lists and calls tools through `mcp-worker-pool serve` on a common mcpServers file", async (t) => {
  t.timeout(90_000);
  // A common MCP client file, as is: no `gateway` block (the port comes from the command line).
  const file = tmpFile("inspector-config") + ".json";
  writeFileSync(file, JSON.stringify({ mcpServers: { fx: { command: process.execPath, args: [FIXTURE_SERVER, "stdio"] } } }));
  t.teardown(() => rmSync(file, { force: true }));

  const serve: ChildProcess = spawn(process.execPath, [CLI, "serve", "--config", file, "--port", "0"], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void serve.kill("SIGKILL"));
  let stderr = "";
  serve.stderr!.on("data", (c: Buffer) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => serve.once("exit", (code) => resolve(code)));
  const logs = () =>
    stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => /"event":"gateway.ready"/.test(stderr), 40_000);
  const url = logs().find((e) => e.event === "gateway.listening")!.url as string;
  t.regex(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);

  const [list, echo, pidRun, unknown] = await Promise.all([
    inspector(t, [url, "--transport", "http", "--method", "tools/list"]),
    inspector(t, [url, "--transport", "http", "--method", "tools/call", "--tool-name", "fx__echo", "--tool-arg", "message=from the inspector"]),
    inspector(t, [url, "--transport", "http", "--method", "tools/call", "--tool-name", "fx__pid"]),
    inspector(t, [url, "--transport", "http", "--method", "tools/call", "--tool-name", "fx__nothing"]),
  ]);
  t.is(list.code, 0, list.stderr);
  const tools = (JSON.parse(list.stdout) as { tools: { name: string }[] }).tools.map((x) => x.name);
  t.true(tools.includes("fx__echo"), tools.join(", "));
  t.true(tools.every((name) => name.startsWith("fx__")), "every tool under its pool name");

  t.is(echo.code, 0, echo.stderr);
  const result = JSON.parse(echo.stdout) as { content: { type: string; text: string }[]; isError?: boolean };
  t.deepEqual(result.content, [{ type: "text", text: "from the inspector" }]);
  t.not(result.isError, true);

  t.is(pidRun.code, 0, pidRun.stderr);
  const pid = Number((JSON.parse(pidRun.stdout) as { content: { text: string }[] }).content[0]!.text);
  t.true(Number.isInteger(pid) && isAlive(pid), `the fixture server runs (pid ${pid})`);

  // An unknown tool: the Inspector reports the gateway's error and exits 1.
  t.is(unknown.code, 1, unknown.stdout);
  t.regex(unknown.stderr, /fx__nothing/);

  t.true(logs().filter((e) => e.event === "session.open").length >= 4, "each Inspector run was a session of its own");
  serve.kill("SIGTERM");
  t.is(await within(20_000, "serve to exit", exited), 0);
  t.false(isAlive(pid), "the fixture server is gone");
  t.true(logs().some((e) => e.event === "gateway.closed"));
});

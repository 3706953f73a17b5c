/**
 * Scale-out (examples/scale-out): two gateways behind HAProxy, started by start.sh. Legacy clients stick
 * to the gateway that created their session, both gateways serve; when one is killed, its clients get a
 * 404 and initialize again on the other, while the other's clients see nothing. Needs haproxy, so it
 * is not part of `npm test`: `npm run test:scale-out` (run by .ci/run).
 */
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { FIXTURE_SERVER, isAlive, waitFor, within } from "../helpers/fixtures.js";

const START = fileURLToPath(new URL("../../../examples/scale-out/start.sh", import.meta.url));
const CLI = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function connect(t: ExecutionContext, url: string): Promise<Client> {
  const client = new Client({ name: "scale-out-test", version: "1.0.0" });
  client.onerror = () => {}; // the GET stream of a lost gateway's client breaks; that is expected
  await within(15_000, "connect", client.connect(new StreamableHTTPClientTransport(new URL(url))));
  t.teardown(() => client.close().catch(() => {}));
  return client;
}

/** The pid of the fixture server behind a client's gateway: each gateway has its own pool, so it names the gateway. */
async function pidOf(client: Client): Promise<number> {
  const result = await within(10_000, "fx__pid", client.callTool({ name: "fx__pid", arguments: {} }));
  return Number((result.content as { text: string }[])[0]!.text);
}

test("legacy sessions stick to their gateway behind HAProxy, both serve, and a lost gateway's clients re-initialize on the other", async (t) => {
  const run = mkdtempSync(join(tmpdir(), "scale-out-"));
  t.teardown(() => rmSync(run, { recursive: true, force: true }));
  const config = join(run, "mcp.json");
  writeFileSync(config, JSON.stringify({ mcpServers: { fx: { command: process.execPath, args: [FIXTURE_SERVER, "stdio"], stderr: "ignore" } } }));
  const [lb, gw1, gw2] = [await freePort(), await freePort(), await freePort()];
  const env = { ...process.env, MCP_LB_PORT: String(lb), MCP_GW1_PORT: String(gw1), MCP_GW2_PORT: String(gw2), MCP_RUN_DIR: run, MCP_POOL_CLI: CLI };
  const script = spawn("bash", [START, config], { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  script.stderr!.on("data", (c: Buffer) => (stderr += c));
  const scriptExited = new Promise<void>((resolve) => script.once("exit", () => resolve()));
  const pids: number[] = [];
  t.teardown(async () => {
    script.kill("SIGTERM");
    await within(20_000, "start.sh exit", scriptExited).catch(() => script.kill("SIGKILL"));
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
  });
  await waitFor(() => stderr.includes("serving at"), 60_000, 100);
  const pidFile = (name: string) => Number(readFileSync(join(run, `${name}.pid`), "utf8"));
  pids.push(pidFile("gw1"), pidFile("gw2"), pidFile("haproxy"));
  const url = `http://127.0.0.1:${lb}/mcp`;
  // Until HAProxy's first health checks pass, a request may find no server up.
  await waitFor(async () => (await fetch(`http://127.0.0.1:${lb}/healthz`).catch(() => undefined))?.status === 200, 10_000, 100);

  const direct1 = await connect(t, `http://127.0.0.1:${gw1}/mcp`);
  const gw1Fixture = await pidOf(direct1);
  const clients = [];
  for (let i = 0; i < 6; i++) clients.push(await connect(t, url));
  const served: number[] = [];
  for (const client of clients) {
    const first = await pidOf(client);
    for (let i = 0; i < 3; i++) t.is(await pidOf(client), first, "every request of a session reaches the gateway that created it");
    served.push(first);
  }
  t.is(new Set(served).size, 2, "both gateways serve");
  await direct1.close();

  process.kill(pidFile("gw1"), "SIGKILL");
  const lost = clients.filter((_, i) => served[i] === gw1Fixture);
  const kept = clients.filter((_, i) => served[i] !== gw1Fixture);
  t.true(lost.length > 0 && kept.length > 0);
  for (const client of lost) {
    // The connection HAProxy held to the lost gateway may fail the first try at the network level
    // ("fetch failed"); a retry reaches the other gateway, which answers the unknown session with 404.
    let status: unknown;
    for (let attempt = 0; attempt < 20 && status === undefined; attempt++) {
      const error = await within(15_000, "call on a lost session", client.callTool({ name: "fx__pid", arguments: {} }).then(() => ({ code: "served" }), (e: { code?: unknown }) => e));
      if (error instanceof TypeError) await new Promise((r) => setTimeout(r, 100));
      else status = error.code;
    }
    t.is(status, 404, "the other gateway does not know the session: 404");
  }
  for (const client of kept) t.not(await pidOf(client), gw1Fixture, "the other gateway's clients see nothing");
  const again = await connect(t, url);
  const newPid = await pidOf(again);
  t.not(newPid, gw1Fixture, "a new session is served by the remaining gateway");
  t.is(newPid, served[clients.indexOf(kept[0]!)]);
});

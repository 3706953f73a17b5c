/**
 * What each server said of itself at its last handshake: `pool.serverInfo(name)` and
 * `stats().servers[name].protocolVersion`, over stdio and Streamable HTTP.
 */
import test from "ava";
import { McpPool, parseConfig } from "../src/index.js";
import { startHttpFixture, stdioServer } from "./helpers/fixtures.js";

test("serverInfo and stats report each server's protocol version, identity, instructions and capabilities once it has connected", async (t) => {
  const http = await startHttpFixture("http", ["--name", "remote"]);
  t.teardown(() => http.close());
  const pool = new McpPool(parseConfig({ servers: { local: stdioServer(["--name", "local"]), remote: { url: http.url } } }));
  t.teardown(() => pool.close());
  // Before the first connect there is nothing to tell.
  t.is(pool.serverInfo("local"), undefined);
  t.is(pool.stats().servers.local!.protocolVersion, undefined);
  await pool.ready();
  for (const name of ["local", "remote"]) {
    const info = pool.serverInfo(name);
    t.truthy(info, name);
    t.regex(info!.protocolVersion ?? "", /^\d{4}-\d{2}-\d{2}$/, name);
    t.is(info!.serverInfo.name, name);
    t.is(info!.serverInfo.version, "1.0.0");
    t.is(info!.instructions, `Tools of the ${name} fixture.`);
    t.deepEqual(info!.capabilities.tools, { listChanged: true });
    t.is(pool.stats().servers[name]!.protocolVersion, info!.protocolVersion);
  }
  t.is(pool.serverInfo("nope"), undefined);
  // Plain data: it survives JSON as it is.
  t.deepEqual(JSON.parse(JSON.stringify(pool.serverInfo("local"))), pool.serverInfo("local"));
});

/**
 * The process the gateway benchmark measures (bench/gateway.ts runs it as a child): either the gateway
 * (`serveGateway` over a one-replica pool of the legacy fixture) or the plain proxy (plain-proxy.ts, the
 * same fixture through one SDK v2 Client on this thread). Prints one JSON line `{ url }` on stdout once
 * it serves; SIGTERM closes everything and exits 0. Its own watchdog ends it if its parent forgets it.
 *
 *   node dist/bench/gateway-host.js gateway|plain-proxy
 */
import { createPool } from "../src/index.js";
import { serveGateway } from "../src/gateway/index.js";
import { servePlainProxy } from "./plain-proxy.js";
import { CALL_TIMEOUT_MS, FIXTURE_ARGS, poolConfig } from "./subjects.js";

const WATCHDOG_MS = 15 * 60_000;

const kind = process.argv[2];
let close: () => Promise<void>;
if (kind === "gateway") {
  const pool = await createPool(poolConfig(1));
  const gateway = await serveGateway(pool, { port: 0 });
  close = async () => {
    await gateway.close();
    await pool.close();
  };
  process.stdout.write(JSON.stringify({ url: gateway.url }) + "\n");
} else if (kind === "plain-proxy") {
  const proxy = await servePlainProxy(process.execPath, FIXTURE_ARGS, 0, CALL_TIMEOUT_MS);
  close = () => proxy.close();
  process.stdout.write(JSON.stringify({ url: proxy.url }) + "\n");
} else {
  process.stderr.write(`usage: gateway-host.js gateway|plain-proxy (got ${String(kind)})\n`);
  process.exit(2);
}

let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`gateway-host: close failed: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
setTimeout(() => {
  process.stderr.write(`gateway-host: still running after ${WATCHDOG_MS / 1000} s, exiting\n`);
  process.exit(1);
}, WATCHDOG_MS).unref();
// Ends with its parent: a closed stdin means the parent is gone.
process.stdin.on("end", stop).resume();

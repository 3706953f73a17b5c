/**
 * A host program for worker-oom-close.test.ts (issue 12, item 1): a worker runs out of heap for real
 * (V8's out-of-memory under `limits.workerHeapMb`, not a refused message), and the pool (or a session)
 * is closed the moment the crash is reported, while the replacement worker boots. The process must
 * then exit by itself with code 0; a crash of the host shows as its exit signal.
 *
 *   node dist/test/helpers/oom-close.js [pool|session]
 */
import { fileURLToPath } from "node:url";
import { createPool } from "../../src/index.js";

const HAZARD_SERVER = fileURLToPath(new URL("../fixtures/hazard-server.js", import.meta.url));
const mode = process.argv[2] === "session" ? "session" : "pool";

const pool = await createPool({
  servers: {
    hazard: {
      command: process.execPath,
      args: [HAZARD_SERVER],
      scope: mode === "session" ? "session" : "shared",
      keepalive: { intervalMs: 0 },
      connectTimeoutMs: 30_000,
    },
  },
  limits: { workerHeapMb: 16 },
});
const crashed = new Promise<void>((resolve) => pool.once("worker:crash", () => resolve()));
const session = pool.session("s1");
const call = mode === "session" ? session.callTool.bind(session) : pool.callTool.bind(pool);
await call("hazard__bloat", {});
await crashed;
// At once: the replacement worker is starting now.
if (mode === "session") await session.close();
await pool.close();
process.stdout.write("closed\n");

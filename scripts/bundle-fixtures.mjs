/**
 * Last step of `npm run build`: bundles each compiled fixture server (dist/test/fixtures/*server.js) in place
 * into one module with everything it imports (the MCP SDK, zod, ajv, express), so that a fixture process
 * loads one file instead of a few hundred.
 *
 * Why: the test suite spawns several hundred fixture processes, and each one paid for resolving and
 * compiling the SDK's modules anew. CPU to the first answer (user + system, 5 spawns each, on this 2-core
 * machine): legacy fixture 0.84-1.00 s from separate modules, 0.42-0.51 s bundled; 2026-07-28 fixture
 * 0.60-0.68 s against 0.39-0.46 s. The servers behave the same: same code, same file names, so every
 * path that names them (tests, bench, examples) is unchanged.
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";

const DIR = "dist/test/fixtures";
const servers = readdirSync(DIR).filter((name) => name.endsWith("server.js"));

await Promise.all(
  servers.map((name) =>
    build({
      entryPoints: [join(DIR, name)],
      outfile: join(DIR, name),
      allowOverwrite: true,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      logLevel: "warning",
      // CommonJS dependencies (ajv, express) call require(), which an ES module does not have.
      banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
    }),
  ),
);

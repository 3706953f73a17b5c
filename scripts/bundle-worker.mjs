/**
 * Second step of `npm run build`, after tsc: bundles the worker side (dist/workers/connection-host.js
 * and everything it imports: the MCP SDK, zod, ajv, comlink) into one module,
 * dist/workers/connection-host.bundle.js, which is what the pool's worker threads load.
 *
 * Why: every worker is a V8 isolate of its own and loads its modules anew. From 176 separate modules
 * an idle worker kept about 4 MB more heap than from one tree-shaken bundle (module records, the
 * source text of each file, and parts it never uses: all of zod's 40-odd locales, zod v3 and zod-mini,
 * pulled in through the SDK). Measured with `node --expose-gc dist/bench/memory-probe.js pool N`: RSS
 * per idle connection beyond the server 17.9 / 16.5 / 17.5 MB (N = 1 / 2 / 4) from separate modules
 * against 13.6 / 12.8 / 13.1 MB from the bundle, both after 30 s idle.
 *
 * Whitespace and syntax minified (issue 19): every worker holds the bundle's source text on its heap for as
 * long as it lives (V8 keeps it to compile functions lazily), so its size is paid once per connection. A heap
 * snapshot of an idle worker after its first call (bench/worker-heap.ts; docs/performance.md, "Idle memory"):
 * 11.02 MB live from the readable bundle (1.07 MB of it that source string), 10.73 MB with whitespace and
 * syntax minified (names kept). Fully minified was 10.49 MB, but renames classes whose names the SDK's code
 * reads at run time (error names); with `keepNames` on top, 11.28 MB (every function gets a `__name` call).
 */
import { writeFileSync } from "node:fs";
import { build } from "esbuild";

const result = await build({
  entryPoints: ["dist/workers/connection-host.js"],
  outfile: "dist/workers/connection-host.bundle.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // Whitespace and syntax only: identifiers keep their names, because code in the bundle reads them at run
  // time (the SDK's errors set `this.name = new.target.name`, zod reports `constructor.name`).
  // BUNDLE_READABLE=1 node scripts/bundle-worker.mjs: not minified at all, for profiles (docs/performance.md).
  minifyWhitespace: process.env.BUNDLE_READABLE !== "1",
  minifySyntax: process.env.BUNDLE_READABLE !== "1",
  // The map is written but not linked: with --enable-source-maps (ava, many production hosts) every worker
  // would parse it into its own heap, 2 MB and more, per connection. Tools that want it (to read a
  // minified stack trace) find it beside the bundle.
  sourcemap: "external",
  logLevel: "warning",
  // CommonJS dependencies (ajv, cross-spawn) call require(), which an ES module does not have.
  banner: { js: 'import { createRequire as __bundleRequire } from "node:module"; const require = __bundleRequire(import.meta.url);' },
  write: false,
});

/**
 * The worker's entry (workers/host-entry.ts), bundled on its own: it launches a stdio server before the bundle
 * above is loaded, so it must not carry the SDK with it. It needs one function of the SDK's
 * (`getDefaultEnvironment`, from `@modelcontextprotocol/client/stdio`), whose module imports the SDK's core
 * chunk (schemas and all) for its transport class. esbuild drops a module none of whose exports are used only
 * when it is known to be free of side effects, and the SDK does not say so (no `sideEffects` in its
 * package.json): this plugin says it, for this bundle only. The result is checked below: a few KB, no zod.
 * Measured: the server's start and the bundle's evaluation overlap (docs/performance.md, "Connect").
 */
const sdkWithoutSideEffects = {
  name: "sdk-without-side-effects",
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData?.resolving || args.path.startsWith("node:")) return undefined;
      const sdk = /[\\/]node_modules[\\/](@modelcontextprotocol|cross-spawn)[\\/]/.test(args.importer) || args.path.startsWith("@modelcontextprotocol/");
      if (!sdk) return undefined;
      const resolved = await b.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: { resolving: true } });
      if (resolved.errors.length > 0) return { errors: resolved.errors };
      return { path: resolved.path, external: resolved.external, sideEffects: false };
    });
  },
};
const entry = await build({
  entryPoints: ["dist/workers/host-entry.js"],
  outfile: "dist/workers/host-entry.bundle.js",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  plugins: [sdkWithoutSideEffects],
  logLevel: "warning",
  write: false,
});
const ENTRY_MAX_BYTES = 32 * 1024;
const entryText = entry.outputFiles[0].text;
if (entryText.length > ENTRY_MAX_BYTES || /\bz\.object\(/.test(entryText)) {
  throw new Error(`dist/workers/host-entry.bundle.js is ${entryText.length} bytes (at most ${ENTRY_MAX_BYTES}) or carries zod schemas: the SDK came along`);
}
result.outputFiles.push(...entry.outputFiles);

/**
 * ASCII only, comments included. esbuild escapes every non-ASCII character in code (its default charset) but
 * keeps comments as written, and one "—" in a comment is enough for V8 to hold the whole source as a
 * two-byte string: in every worker, twice the bundle's size (about 2 MB instead of 1). What is left to escape
 * is in comments, where `\uXXXX` is as good as the character.
 */
const ascii = (text) => text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
for (const file of result.outputFiles) {
  writeFileSync(file.path, file.path.endsWith(".js") ? ascii(file.text) : file.contents);
}

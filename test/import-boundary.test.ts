/**
 * The thread boundary in the source tree: main-thread modules (src/) and worker-side modules (workers/)
 * never import each other; the modules both sides use live in src/common/, which imports neither side.
 * Checked on the sources (every .ts file, subfolders included), not the build: each relative specifier is
 * resolved against its file, so `../src/common/../pool.js` counts as what it names.
 */
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g;

interface Import {
  /** The importing file, relative to the repo root with `/` separators. */
  file: string;
  /** The imported module, resolved and relative to the repo root with `/` separators. */
  target: string;
}

function sourcesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) files.push(...sourcesUnder(path));
    else if (entry.name.endsWith(".ts")) files.push(path);
  }
  return files;
}

/** The relative imports of every .ts file under `dir`; package imports cannot cross the boundary. */
function importsOf(dir: string): Import[] {
  const found: Import[] = [];
  for (const file of sourcesUnder(dir)) {
    for (const m of readFileSync(join(ROOT, file), "utf8").matchAll(SPECIFIER)) {
      const specifier = m[1]!;
      if (!specifier.startsWith(".")) continue;
      const target = relative(ROOT, join(ROOT, dirname(file), specifier)).split(sep).join("/");
      found.push({ file, target });
    }
  }
  return found;
}

const inCommon = (path: string): boolean => path.startsWith("src/common/");
const inMain = (path: string): boolean => path.startsWith("src/") && !inCommon(path);
const inWorkers = (path: string): boolean => path.startsWith("workers/");

test("main-thread modules outside src/common/ never import the worker side", (t) => {
  const imports = importsOf("src").filter(({ file }) => inMain(file));
  t.true(imports.some(({ target }) => inCommon(target)), "the scan sees the main thread's imports of src/common/");
  t.deepEqual(imports.filter(({ target }) => inWorkers(target)), []);
});

test("worker-side modules import from src/ only what is in src/common/", (t) => {
  const imports = importsOf("workers");
  t.true(imports.some(({ target }) => inCommon(target)), "the scan sees the worker side's imports of src/common/");
  t.deepEqual(imports.filter(({ target }) => inMain(target)), []);
});

test("src/common/ imports neither the main thread nor the worker side", (t) => {
  const imports = importsOf("src/common");
  t.true(sourcesUnder("src/common").length >= 3, "the scan sees src/common/");
  t.deepEqual(imports.filter(({ target }) => inMain(target) || inWorkers(target)), []);
});

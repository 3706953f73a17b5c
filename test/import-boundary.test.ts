/**
 * The thread boundary in the source tree: main-thread modules (src/) and worker-side modules (workers/)
 * never import each other, except the few modules both sides share. Checked on the sources, not the build.
 */
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The only src/ modules the worker side may import (see DESIGN.md, layout). */
const SHARED = new Set(["protocol.js", "process-group.js", "backoff.js"]);

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SPECIFIER = /(?:\bfrom|\bimport)\s*\(?\s*["']([^"']+)["']/g;

function importsOf(dir: string): Array<{ file: string; specifier: string }> {
  const found: Array<{ file: string; specifier: string }> = [];
  for (const name of readdirSync(ROOT + dir)) {
    if (!name.endsWith(".ts")) continue;
    for (const m of readFileSync(`${ROOT}${dir}/${name}`, "utf8").matchAll(SPECIFIER)) found.push({ file: `${dir}/${name}`, specifier: m[1]! });
  }
  return found;
}

test("main-thread modules never import the worker side", (t) => {
  t.deepEqual(importsOf("src").filter(({ specifier }) => specifier.includes("workers/")), []);
});

test("worker-side modules import from src/ only the modules both sides share", (t) => {
  const crossing = importsOf("workers").filter(({ specifier }) => specifier.startsWith("../src/"));
  t.true(crossing.length > 0, "the scan sees the shared imports");
  t.deepEqual(crossing.filter(({ specifier }) => !SHARED.has(specifier.slice("../src/".length))), []);
});

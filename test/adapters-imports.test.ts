/**
 * `ai` and `@langchain/core` are optional peer dependencies: the package's main entry must load neither, and each
 * adapter only its own framework. Checked on the build, in a child process that records every module resolved.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

const DIST = fileURLToPath(new URL("../", import.meta.url));
const TRACER = fileURLToPath(new URL("./helpers/trace-imports.js", import.meta.url));

function loaded(entry: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [TRACER, DIST + entry], { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${String(error)}\n${stderr}`));
      else resolve(JSON.parse(stdout) as string[]);
    });
  });
}

const AI = /\/node_modules\/(ai|@ai-sdk\/[^/]+)\//;
const LANGCHAIN = /\/node_modules\/@langchain\//;

test("the main entry loads neither the AI SDK nor LangChain", async (t) => {
  const urls = await loaded("index.js");
  t.true(urls.some((url) => url.includes("/node_modules/zod/")), "the trace sees the entry's own dependencies");
  t.deepEqual(urls.filter((url) => AI.test(url) || LANGCHAIN.test(url)), []);
});

test("the AI SDK adapter loads the AI SDK and not LangChain", async (t) => {
  const urls = await loaded("src/adapters/ai-sdk.js");
  t.true(urls.some((url) => AI.test(url)));
  t.deepEqual(urls.filter((url) => LANGCHAIN.test(url)), []);
});

test("the LangChain adapter loads LangChain and not the AI SDK", async (t) => {
  const urls = await loaded("src/adapters/langchain.js");
  t.true(urls.some((url) => LANGCHAIN.test(url)));
  t.deepEqual(urls.filter((url) => AI.test(url)), []);
});

test("the subpath exports resolve to the adapters, with their types beside them", async (t) => {
  const { existsSync } = await import("node:fs");
  // Through the package's own name (Node resolves a package's self-reference through its exports).
  const specifiers = { "mcp-worker-pool/ai-sdk": "aiSdkTools", "mcp-worker-pool/langchain": "langchainTools" };
  for (const [specifier, name] of Object.entries(specifiers)) {
    const url = import.meta.resolve(specifier);
    t.regex(url, /\/dist\/src\/adapters\/(ai-sdk|langchain)\.js$/);
    t.true(existsSync(fileURLToPath(url.replace(/\.js$/, ".d.ts"))), `${specifier}: types`);
    t.is(typeof ((await import(specifier)) as Record<string, unknown>)[name], "function");
  }
});

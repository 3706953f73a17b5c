/**
 * The adapter examples run from the build as README says (`node dist/examples/<name>.js`), end on their own,
 * and print the answers their scripted models give from what the pool's tools returned.
 */
import test from "ava";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

function run(example: string): Promise<string> {
  const file = fileURLToPath(new URL(`../examples/${example}.js`, import.meta.url));
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [file], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${example}: ${String(error)}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

test("examples/ai-sdk runs generateText over the pool and answers from the tool results", async (t) => {
  const out = await run("ai-sdk");
  t.regex(out, /tool example__increment\(\{\}\) → \{"content":\[\{"type":"text","text":"2"\}\]\}/);
  t.regex(out, /answer: The counter is at 2\./);
});

test("examples/langchain runs a tool-calling loop over the pool, a tool error included", async (t) => {
  const out = await run("langchain");
  t.regex(out, /tool example__echo\(\{"message":"hello pool"\}\) → success: "hello pool"/);
  t.regex(out, /tool example__fail\(.*\) → error: "as asked"/);
  t.regex(out, /answer: The echo said "hello pool"; the fail tool reported error\./);
});

/**
 * `node trace-imports.js <module path>`: imports that module and prints, as one JSON line, the URL of every
 * module resolved while it loaded (through import-hooks.ts). For tests of what an entry point loads.
 */
import { register } from "node:module";
import { pathToFileURL } from "node:url";
import { MessageChannel } from "node:worker_threads";

const target = process.argv[2];
if (!target) throw new Error("usage: trace-imports.js <module path>");

const { port1, port2 } = new MessageChannel();
const urls: string[] = [];
port1.on("message", (url: string) => urls.push(url));
register(new URL("./import-hooks.js", import.meta.url), { data: { port: port2 }, transferList: [port2] });

await import(pathToFileURL(target).href);
// The port keeps order: once this last module's URL has arrived, so have all of the target's.
const sentinel = "data:text/javascript,export const traced = true;";
await import(sentinel);
const deadline = Date.now() + 10_000;
while (!urls.includes(sentinel)) {
  if (Date.now() > deadline) throw new Error("the import hooks reported nothing within 10 s");
  await new Promise((r) => setTimeout(r, 10));
}
process.stdout.write(JSON.stringify(urls.filter((url) => url !== sentinel)) + "\n");
port1.close();

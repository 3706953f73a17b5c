/**
 * The catalogs, pure (no threads, no servers): naming of tools and prompts (prefix, filters, overrides,
 * collisions, stability once sealed, session views over a base), resources and templates (kept as listed,
 * filtered, routed by URI), what update() reports, and the owner of a name not listed yet.
 */
import test from "ava";
import type { Prompt, Resource, ResourceTemplateType as ResourceTemplate, Tool } from "@modelcontextprotocol/client";
import { buildCatalog, Catalogs, type PoolPrompt, type PoolTool } from "../src/catalogs.js";
import { parseConfig } from "../src/config.js";

const tool = (name: string, description = `${name} tool`): Tool => ({ name, description, inputSchema: { type: "object" } });
const prompt = (name: string, description = `${name} prompt`): Prompt => ({ name, description });
const resource = (uri: string, name = uri): Resource => ({ uri, name });
const template = (uriTemplate: string, name = uriTemplate): ResourceTemplate => ({ uriTemplate, name });
const configs = (input: Record<string, unknown>) => Object.values(parseConfig({ servers: input }).servers);
const names = (entries: Array<PoolTool | PoolPrompt>) => entries.map((e) => e.name);

// ---------------------------------------------------------------- tools

test("buildCatalog names tools <server>__<tool> and keeps the server's Tool intact", (t) => {
  const echo = tool("echo");
  const catalog = buildCatalog(configs({ a: { command: "x" } }), new Map([["a", [echo, tool("slow")]]]));
  t.deepEqual(names(catalog), ["a__echo", "a__slow"]);
  t.is(catalog[0]!.server, "a");
  t.is(catalog[0]!.tool, echo);
});

test("buildCatalog uses a configured prefix instead of the server name", (t) => {
  const catalog = buildCatalog(configs({ a: { command: "x", prefix: "fs" } }), new Map([["a", [tool("read")]]]));
  t.deepEqual(names(catalog), ["fs__read"]);
  t.is(catalog[0]!.server, "a");
});

test('buildCatalog exposes bare tool names with prefix ""', (t) => {
  const catalog = buildCatalog(configs({ a: { command: "x", prefix: "" } }), new Map([["a", [tool("echo"), tool("slow")]]]));
  t.deepEqual(names(catalog), ["echo", "slow"]);
});

test("buildCatalog exposes only included tools and hides excluded ones", (t) => {
  const list = [tool("echo"), tool("slow"), tool("crash"), tool("hang")];
  const catalog = buildCatalog(
    configs({
      inc: { command: "x", tools: { include: ["echo", "slow", "missing"] } },
      exc: { command: "x", tools: { exclude: ["crash", "hang"] } },
      both: { command: "x", tools: { include: ["echo", "slow"], exclude: ["slow"] } },
    }),
    new Map([["inc", list], ["exc", list], ["both", list]]),
  );
  t.deepEqual(names(catalog), ["inc__echo", "inc__slow", "exc__echo", "exc__slow", "both__echo"]);
});

test("buildCatalog applies override aliases and descriptions without renaming the server's tool", (t) => {
  const catalog = buildCatalog(
    configs({
      a: { command: "x", tools: { overrides: { echo: { alias: "say", description: "Says it." }, slow: { description: "Takes time." } } } },
    }),
    new Map([["a", [tool("echo", "Returns its message."), tool("slow", "Waits.")]]]),
  );
  t.deepEqual(names(catalog), ["say", "a__slow"]);
  t.is(catalog[0]!.tool.name, "echo");
  t.is(catalog[0]!.tool.description, "Says it.");
  t.is(catalog[1]!.tool.name, "slow");
  t.is(catalog[1]!.tool.description, "Takes time.");
});

test("buildCatalog resolves collisions deterministically: the earlier server keeps the name", (t) => {
  const cfg = configs({ a: { command: "x", prefix: "" }, b: { command: "x", prefix: "" } });
  const tools = new Map([["a", [tool("echo"), tool("slow")]], ["b", [tool("echo"), tool("other")]]]);
  const first = buildCatalog(cfg, tools);
  t.deepEqual(names(first), names(buildCatalog(cfg, tools)));
  t.deepEqual(
    first.map((e) => [e.name, e.server, e.tool.name]),
    [["echo", "a", "echo"], ["slow", "a", "slow"], ["b__echo", "b", "echo"], ["other", "b", "other"]],
  );
});

test("buildCatalog keeps names unique even when the fallback name is taken too", (t) => {
  const cfg = configs({
    a: { command: "x", prefix: "" },
    b: { command: "x", prefix: "" },
    c: { command: "x", tools: { overrides: { echo: { alias: "echo" } } } },
  });
  // a takes "echo" and (as a bare name) "b__echo"; b's echo falls back past both.
  const tools = new Map([["a", [tool("echo"), tool("b__echo")]], ["b", [tool("echo")]], ["c", [tool("echo")]]]);
  const catalog = buildCatalog(cfg, tools);
  const all = names(catalog);
  t.is(new Set(all).size, all.length);
  // As README documents: <server>__<tool>, then <server>__<tool>_2, ...
  t.deepEqual(all, ["echo", "b__echo", "b__echo_2", "c__echo"]);
  t.deepEqual(catalog.map((e) => e.server), ["a", "a", "b", "c"]);
  t.deepEqual(names(buildCatalog(cfg, tools)), all);
});

test("buildCatalog resolves two aliases that collide", (t) => {
  const cfg = configs({
    a: { command: "x", tools: { overrides: { one: { alias: "run" } } } },
    b: { command: "x", tools: { overrides: { two: { alias: "run" } } } },
  });
  const catalog = buildCatalog(cfg, new Map([["a", [tool("one")]], ["b", [tool("two")]]]));
  t.deepEqual(names(catalog), ["run", "b__two"]);
});

test("10,000 tools of one name get unique numbered names, in list order, in bounded time", (t) => {
  const twins = Array.from({ length: 10_000 }, (_, i) => tool("twin", `copy ${i}`));
  const started = Date.now();
  const catalog = buildCatalog(configs({ a: { command: "x" } }), new Map([["a", twins]]));
  const elapsed = Date.now() - started;
  t.is(catalog.length, 10_000);
  t.is(new Set(names(catalog)).size, 10_000);
  t.deepEqual(names(catalog).slice(0, 3), ["a__twin", "a__twin_2", "a__twin_3"]);
  catalog.forEach((e, i) => {
    if (e.server !== "a" || e.tool.name !== "twin" || e.tool.description !== `copy ${i}`) t.fail(`entry ${i} maps to the wrong tool`);
  });
  // Only the quadratic case is caught here (it took several seconds); linear takes milliseconds.
  t.true(elapsed < 2_000, `took ${elapsed} ms`);
});

test("a tool that requires task augmentation is not listed; an optional one is", (t) => {
  const task = (name: string, taskSupport: string): Tool => ({ ...tool(name), execution: { taskSupport } } as Tool);
  const catalogs = new Catalogs(configs({ a: { command: "x" } }));
  catalogs.update("a", { tools: [task("research", "required"), task("maybe", "optional"), tool("echo")] });
  t.deepEqual(names(catalogs.tools()), ["a__maybe", "a__echo"]);
  t.is(catalogs.resolveTool("a__research"), undefined);
  t.is(catalogs.toolCount("a"), 2);
});

test("updating one server's tools leaves every other server's entries untouched", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x" }, b: { command: "x" } }));
  catalogs.seal();
  catalogs.update("a", { tools: [tool("echo"), tool("slow")] });
  const before = catalogs.tools().filter((e) => e.server === "a");
  t.deepEqual(catalogs.update("b", { tools: [tool("echo")] }), ["tools"]);
  t.deepEqual(catalogs.update("b", { tools: [tool("echo"), tool("other")] }), ["tools"]);
  const after = catalogs.tools().filter((e) => e.server === "a");
  t.is(after.length, 2);
  after.forEach((e, i) => t.is(e, before[i]));
  t.is(catalogs.toolCount("a"), 2);
  t.is(catalogs.toolCount("b"), 2);
});

test("once sealed, a name handed out stays with its tool: a server listed earlier that lists later gets the fallback", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x", prefix: "" }, b: { command: "x", prefix: "" } }));
  catalogs.seal();
  catalogs.update("b", { tools: [tool("echo")] });
  catalogs.update("a", { tools: [tool("echo"), tool("slow")] });
  t.deepEqual(catalogs.tools().map((e) => [e.name, e.server]), [["a__echo", "a"], ["slow", "a"], ["echo", "b"]]);
  // b drops echo: its name is free again, but a's echo keeps the name it was given.
  catalogs.update("b", { tools: [] });
  t.is(catalogs.resolveTool("echo"), undefined);
  catalogs.update("a", { tools: [tool("echo"), tool("slow"), tool("new")] });
  t.deepEqual(names(catalogs.tools()), ["a__echo", "slow", "new"]);
  t.is(catalogs.resolveTool("a__echo")?.server, "a");
});

test("before it is sealed, contested names go by config order whatever the order of listing", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x", prefix: "" }, b: { command: "x", prefix: "" } }));
  catalogs.update("b", { tools: [tool("echo")], prompts: [prompt("greet")] });
  catalogs.update("a", { tools: [tool("echo")], prompts: [prompt("greet")] });
  t.deepEqual(catalogs.tools().map((e) => [e.name, e.server]), [["echo", "a"], ["b__echo", "b"]]);
  t.deepEqual(catalogs.prompts().map((e) => [e.name, e.server]), [["greet", "a"], ["b__greet", "b"]]);
});

test("a session's view names the base's tools as the base does and never reuses a base name for its own", (t) => {
  const cfg = configs({ s: { command: "x", scope: "session", prefix: "" }, g: { command: "x", prefix: "" } });
  const base = new Catalogs(cfg);
  base.seal();
  base.update("s", { tools: [tool("echo"), tool("whoami")] });
  base.update("g", { tools: [tool("mine"), tool("shared")] });
  // A session whose server lists what the pool's lists sees no change (no tools:changed for it).
  const same = new Catalogs(cfg, base);
  t.deepEqual(same.update("s", { tools: [tool("echo"), tool("whoami")] }), []);
  t.deepEqual(names(same.tools()), names(base.tools()));
  const view = new Catalogs(cfg, base);
  t.deepEqual(view.update("s", { tools: [tool("whoami"), tool("mine"), tool("private")] }), ["tools"]);
  t.deepEqual(
    view.tools().map((e) => [e.name, e.server, e.tool.name]),
    [["whoami", "s", "whoami"], ["s__mine", "s", "mine"], ["private", "s", "private"], ["mine", "g", "mine"], ["shared", "g", "shared"]],
  );
  // The base's echo of s is not this session's: it no longer lists it.
  t.is(view.resolveTool("echo"), undefined);
  t.is(view.resolveTool("mine")?.server, "g");
  t.is(view.resolveTool("private")?.server, "s");
  t.is(base.resolveTool("private"), undefined);
  t.true(view.has("s"));
  t.false(view.has("g"));
});

// ---------------------------------------------------------------- prompts

test("prompts are named like tools: <prefix>__<prompt>, a bare name with prefix \"\", an alias, the server's Prompt kept", (t) => {
  const greet = prompt("greet");
  const catalogs = new Catalogs(
    configs({
      a: { command: "x" },
      b: { command: "x", prefix: "" },
      c: { command: "x", prefix: "p", prompts: { overrides: { greet: { alias: "hello", description: "Says hello." } } } },
    }),
  );
  catalogs.update("a", { prompts: [greet, prompt("summarize")] });
  catalogs.update("b", { prompts: [prompt("review")] });
  catalogs.update("c", { prompts: [prompt("greet"), prompt("other")] });
  t.deepEqual(
    catalogs.prompts().map((e) => [e.name, e.server, e.prompt.name]),
    [["a__greet", "a", "greet"], ["a__summarize", "a", "summarize"], ["review", "b", "review"], ["hello", "c", "greet"], ["p__other", "c", "other"]],
  );
  t.is(catalogs.prompts()[0]!.prompt, greet);
  t.is(catalogs.resolvePrompt("hello")?.prompt.description, "Says hello.");
  t.is(catalogs.resolvePrompt("p__other")?.prompt.description, "other prompt");
  t.is(catalogs.resolvePrompt("a__nothing"), undefined);
});

test("prompt collisions fall back to <server>__<prompt>, then numbered names; two servers' prompt aliases that collide resolve the same way", (t) => {
  const catalogs = new Catalogs(
    configs({
      a: { command: "x", prefix: "", prompts: { overrides: { one: { alias: "run" } } } },
      b: { command: "x", prefix: "", prompts: { overrides: { two: { alias: "run" } } } },
    }),
  );
  catalogs.update("a", { prompts: [prompt("one"), prompt("greet"), prompt("b__greet")] });
  catalogs.update("b", { prompts: [prompt("two"), prompt("greet")] });
  catalogs.seal();
  t.deepEqual(
    catalogs.prompts().map((e) => [e.name, e.server, e.prompt.name]),
    [["run", "a", "one"], ["greet", "a", "greet"], ["b__greet", "a", "b__greet"], ["b__two", "b", "two"], ["b__greet_2", "b", "greet"]],
  );
});

test("a tool and a prompt may have the same pool name: tools and prompts are separate namespaces", (t) => {
  const catalogs = new Catalogs(
    configs({
      a: { command: "x", tools: { overrides: { t: { alias: "run" } } }, prompts: { overrides: { p: { alias: "run" } } } },
      b: { command: "x" },
    }),
  );
  catalogs.update("a", { tools: [tool("t")], prompts: [prompt("p")] });
  catalogs.update("b", { tools: [tool("echo")], prompts: [prompt("echo")] });
  t.deepEqual(names(catalogs.tools()), ["run", "b__echo"]);
  t.deepEqual(names(catalogs.prompts()), ["run", "b__echo"]);
  t.is(catalogs.resolveTool("run")?.tool.name, "t");
  t.is(catalogs.resolvePrompt("run")?.prompt.name, "p");
});

test("once sealed, a prompt's name stays with it while its server lists it, and a late server never takes it over", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x", prefix: "" }, b: { command: "x", prefix: "" } }));
  catalogs.seal();
  catalogs.update("b", { prompts: [prompt("greet")] });
  catalogs.update("a", { prompts: [prompt("greet")] });
  t.deepEqual(catalogs.prompts().map((e) => [e.name, e.server]), [["a__greet", "a"], ["greet", "b"]]);
  // Another prompt added on b: b's greet keeps its name.
  catalogs.update("b", { prompts: [prompt("greet"), prompt("more")] });
  t.deepEqual(catalogs.resolvePrompt("greet"), { name: "greet", server: "b", prompt: prompt("greet") });
  catalogs.update("b", { prompts: [prompt("more")] });
  t.is(catalogs.resolvePrompt("greet"), undefined);
  t.is(catalogs.resolvePrompt("a__greet")?.server, "a");
});

test("a session's view of prompts: its own for the servers it listed, the base's for the others, no base name reused", (t) => {
  const cfg = configs({ s: { command: "x", scope: "session", prefix: "" }, g: { command: "x", prefix: "" } });
  const base = new Catalogs(cfg);
  base.seal();
  base.update("s", { prompts: [prompt("intro")] });
  base.update("g", { prompts: [prompt("shared")] });
  const view = new Catalogs(cfg, base);
  t.deepEqual(view.update("s", { prompts: [prompt("intro"), prompt("shared"), prompt("mine")] }), ["prompts"]);
  t.deepEqual(
    view.prompts().map((e) => [e.name, e.server, e.prompt.name]),
    [["intro", "s", "intro"], ["s__shared", "s", "shared"], ["mine", "s", "mine"], ["shared", "g", "shared"]],
  );
  t.is(view.resolvePrompt("shared")?.server, "g");
  t.is(view.resolvePrompt("mine")?.server, "s");
  t.is(base.resolvePrompt("mine"), undefined);
});

// ---------------------------------------------------------------- include / exclude per kind

test("include and exclude apply per kind: a tools block does not filter prompts, and a prompts block does not filter tools", (t) => {
  const catalogs = new Catalogs(
    configs({
      a: { command: "x", tools: { include: ["echo"] }, prompts: { exclude: ["echo"] } },
      b: { command: "x", prompts: { include: ["greet", "missing"] } },
    }),
  );
  catalogs.update("a", { tools: [tool("echo"), tool("greet")], prompts: [prompt("echo"), prompt("greet")] });
  catalogs.update("b", { tools: [tool("echo"), tool("greet")], prompts: [prompt("echo"), prompt("greet")] });
  t.deepEqual(names(catalogs.tools()), ["a__echo", "b__echo", "b__greet"]);
  t.deepEqual(names(catalogs.prompts()), ["a__greet", "b__greet"]);
  t.is(catalogs.resolvePrompt("a__echo"), undefined);
  t.is(catalogs.resolvePrompt("b__echo"), undefined);
});

test("resources include and exclude match a resource's uri or a template's uriTemplate exactly; excluded ones are neither listed nor routed", (t) => {
  const catalogs = new Catalogs(
    configs({
      inc: { command: "x", resources: { include: ["file:///a.txt", "db://{table}"] } },
      exc: { command: "x", resources: { exclude: ["file:///secret", "vault://{key}"] } },
    }),
  );
  const lists = {
    resources: [resource("file:///a.txt"), resource("file:///secret")],
    resourceTemplates: [template("db://{table}"), template("vault://{key}")],
  };
  catalogs.update("inc", lists);
  catalogs.update("exc", lists);
  t.deepEqual(catalogs.resources().map((e) => [e.uri, e.server]), [["file:///a.txt", "inc"], ["file:///a.txt", "exc"]]);
  t.deepEqual(catalogs.resourceTemplates().map((e) => [e.resourceTemplate.uriTemplate, e.server]), [["db://{table}", "inc"], ["db://{table}", "exc"]]);
  t.is(catalogs.routeUri("file:///secret"), undefined);
  t.is(catalogs.routeUri("vault://k1"), undefined);
  t.is(catalogs.routeUri("db://users"), "inc");
  // Exact entries only: a prefix of an excluded URI is no pattern.
  const prefixOnly = new Catalogs(configs({ a: { command: "x", resources: { exclude: ["file:///"] } } }));
  prefixOnly.update("a", { resources: [resource("file:///x")] });
  t.is(prefixOnly.routeUri("file:///x"), "a");
});

// ---------------------------------------------------------------- resources and routing

test("resources keep their URI and the server's Resource; the same URI from two servers is listed for each, in config order", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x", prefix: "fs" }, b: { command: "x" } }));
  const readme = resource("file:///readme", "README");
  catalogs.update("b", { resources: [resource("file:///readme", "b's")], resourceTemplates: [template("file:///{path}")] });
  catalogs.update("a", { resources: [readme, resource("mem://x")], resourceTemplates: [] });
  t.deepEqual(catalogs.resources().map((e) => [e.uri, e.server]), [["file:///readme", "a"], ["mem://x", "a"], ["file:///readme", "b"]]);
  t.is(catalogs.resources()[0]!.resource, readme);
  t.deepEqual(catalogs.resourceTemplates(), [{ server: "b", resourceTemplate: template("file:///{path}") }]);
});

test("routeUri prefers a server that listed the exact URI over an earlier server whose template matches it", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x" }, b: { command: "x" }, c: { command: "x" } }));
  catalogs.update("a", { resources: [], resourceTemplates: [template("file:///{+path}")] });
  catalogs.update("b", { resources: [resource("file:///etc/hosts")], resourceTemplates: [] });
  catalogs.update("c", { resources: [resource("file:///etc/hosts")], resourceTemplates: [template("file:///{+path}")] });
  t.is(catalogs.routeUri("file:///etc/hosts"), "b");
  t.is(catalogs.routeUri("file:///etc/passwd"), "a");
  t.is(catalogs.routeUri("http://elsewhere/"), undefined);
});

test("routeUri goes by config order, not by the order servers listed in", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x" }, b: { command: "x" } }));
  catalogs.seal();
  catalogs.update("b", { resources: [resource("mem://one")], resourceTemplates: [template("users://{id}")] });
  catalogs.update("a", { resources: [resource("mem://one")], resourceTemplates: [template("users://{id}")] });
  t.is(catalogs.routeUri("mem://one"), "a");
  t.is(catalogs.routeUri("users://42"), "a");
  // a drops both: b serves them.
  catalogs.update("a", { resources: [], resourceTemplates: [] });
  t.is(catalogs.routeUri("mem://one"), "b");
  t.is(catalogs.routeUri("users://42"), "b");
});

test("a session's view routes a URI by its own lists for the servers it listed and the base's for the others", (t) => {
  const cfg = configs({ s: { command: "x", scope: "session" }, g: { command: "x" } });
  const base = new Catalogs(cfg);
  base.seal();
  base.update("s", { resources: [resource("mem://pool-only")], resourceTemplates: [] });
  base.update("g", { resources: [resource("mem://shared")], resourceTemplates: [template("g://{x}")] });
  const view = new Catalogs(cfg, base);
  t.deepEqual(view.update("s", { resources: [resource("mem://mine")] }), ["resources"]);
  t.is(view.routeUri("mem://mine"), "s");
  t.is(view.routeUri("mem://pool-only"), undefined);
  t.is(view.routeUri("mem://shared"), "g");
  t.is(view.routeUri("g://1"), "g");
  t.is(base.routeUri("mem://mine"), undefined);
  t.deepEqual(view.resources().map((e) => e.uri), ["mem://mine", "mem://shared"]);
  t.deepEqual(view.resourceTemplates().map((e) => e.server), ["g"]);
});

// ---------------------------------------------------------------- update() and versions

test("update returns exactly the kinds whose entries changed, resources covering templates, and bumps the version every time", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x" } }));
  const lists = { tools: [tool("echo")], prompts: [prompt("greet")], resources: [resource("mem://x")], resourceTemplates: [template("t://{x}")] };
  t.deepEqual(catalogs.update("a", lists), ["tools", "prompts", "resources"]);
  t.is(catalogs.version("a"), 1);
  t.deepEqual(catalogs.update("a", structuredClone(lists)), []);
  t.is(catalogs.version("a"), 2);
  t.deepEqual(catalogs.update("a", { prompts: [prompt("greet"), prompt("new")] }), ["prompts"]);
  t.deepEqual(catalogs.update("a", { resourceTemplates: [template("t://{y}")] }), ["resources"]);
  t.deepEqual(catalogs.update("a", { resources: [resource("mem://x")], resourceTemplates: [template("t://{y}")] }), []);
  t.deepEqual(catalogs.update("a", { tools: [tool("echo", "changed description")] }), ["tools"]);
  t.deepEqual(catalogs.update("a", {}), []);
  t.is(catalogs.version("a"), 7);
  t.is(catalogs.version("other"), 0);
  // Lists that were not given are kept.
  t.deepEqual(catalogs.prompts().map((e) => e.prompt.name), ["greet", "new"]);
  t.deepEqual(catalogs.resources().map((e) => e.uri), ["mem://x"]);
});

test("has() is true once the server listed its tools here, not for other lists alone", (t) => {
  const catalogs = new Catalogs(configs({ a: { command: "x" } }));
  t.false(catalogs.has("a"));
  catalogs.update("a", { prompts: [prompt("greet")] });
  t.false(catalogs.has("a"));
  catalogs.update("a", { tools: [] });
  t.true(catalogs.has("a"));
});

// ---------------------------------------------------------------- names not listed yet

test("unlistedOwner finds a server not listed yet by its prefix or an alias of that kind, with the server's own name", (t) => {
  const catalogs = new Catalogs(
    configs({
      a: { command: "x", tools: { overrides: { echo: { alias: "say" } }, exclude: ["hidden"] }, prompts: { overrides: { greet: { alias: "hello" } } } },
      b: { command: "x", prefix: "" },
    }),
  );
  t.deepEqual(catalogs.unlistedOwner("tools", "a__echo"), { server: "a", name: "echo" });
  t.deepEqual(catalogs.unlistedOwner("tools", "say"), { server: "a", name: "echo" });
  t.deepEqual(catalogs.unlistedOwner("prompts", "hello"), { server: "a", name: "greet" });
  // Aliases are per kind; excluded names belong to no one; prefix "" claims nothing.
  t.is(catalogs.unlistedOwner("prompts", "say"), undefined);
  t.is(catalogs.unlistedOwner("tools", "hello"), undefined);
  t.is(catalogs.unlistedOwner("tools", "a__hidden"), undefined);
  t.is(catalogs.unlistedOwner("tools", "anything"), undefined);
  // Once a server listed a kind, its names are resolved, not guessed.
  catalogs.update("a", { tools: [tool("other")] });
  t.is(catalogs.unlistedOwner("tools", "a__echo"), undefined);
  t.deepEqual(catalogs.unlistedOwner("prompts", "a__greet"), { server: "a", name: "greet" });
  // A view knows what its base listed.
  const view = new Catalogs(configs({ a: { command: "x" }, b: { command: "x", prefix: "" } }), catalogs);
  t.is(view.unlistedOwner("tools", "a__echo"), undefined);
  t.deepEqual(view.unlistedOwner("prompts", "a__greet"), { server: "a", name: "greet" });
});

/**
 * The router and the pick of a replica, pure (no threads, no servers): a name or a URI → its server → the
 * group that carries the request, and what a request that resolves nowhere is told.
 */
import test from "ava";
import type { Prompt, Resource, ResourceTemplateType as ResourceTemplate, Tool } from "@modelcontextprotocol/client";
import { Catalogs } from "../src/catalogs.js";
import { parseConfig } from "../src/config.js";
import type { Connection } from "../src/connection.js";
import { McpPoolError } from "../src/errors.js";
import { Router } from "../src/router.js";
import { pickConnection, type GroupHost, type ServerGroup } from "../src/server-group.js";
import { Servers } from "../src/servers.js";
import { Sessions } from "../src/sessions.js";

const tool = (name: string): Tool => ({ name, inputSchema: { type: "object" } });
const prompt = (name: string): Prompt => ({ name });
const resource = (uri: string): Resource => ({ uri, name: uri });
const template = (uriTemplate: string): ResourceTemplate => ({ uriTemplate, name: uriTemplate });

/** A router over `servers`, with what each server listed; nothing is started (no group host is ever asked). */
function routerOver(servers: Record<string, unknown>, listed: Record<string, { tools?: Tool[]; prompts?: Prompt[]; resources?: Resource[]; resourceTemplates?: ResourceTemplate[] }>) {
  const config = parseConfig({ servers });
  const list = Object.values(config.servers);
  const catalogs = new Catalogs(list);
  // A ready connection reports all four lists (empty for a capability the server lacks).
  for (const [server, lists] of Object.entries(listed)) catalogs.update(server, { tools: [], prompts: [], resources: [], resourceTemplates: [], ...lists });
  catalogs.seal();
  const sessions = new Sessions(config.limits, { opened: () => {}, closed: () => {} });
  const servers_ = new Servers(list, {} as GroupHost, (s) => catalogs.has(s));
  return { router: new Router(config, catalogs, sessions, servers_), servers: servers_, config, sessions };
}

test("a tool or a prompt resolves by its pool name to its server and its own name", (t) => {
  const { router } = routerOver({ a: { command: "x" }, b: { command: "x", prefix: "bee" } }, {
    a: { tools: [tool("echo")], prompts: [prompt("greet")] },
    b: { tools: [tool("echo")] },
  });
  t.like(router.tool("a__echo", undefined), { server: "a", tool: { name: "echo" } });
  t.like(router.tool("bee__echo", undefined), { server: "b", tool: { name: "echo" } });
  t.like(router.prompt("a__greet", undefined), { server: "a", prompt: { name: "greet" } });
  t.is(router.tool("a__greet", undefined), undefined);
});

test("a name nobody lists is TOOL_NOT_FOUND or PROMPT_NOT_FOUND; one that would be an unlisted server's is SERVER_UNAVAILABLE", (t) => {
  const { router, servers } = routerOver({ a: { command: "x" }, late: { command: "x" } }, { a: { tools: [tool("echo")] } });
  t.is(router.notFound("tools", "nope").code, "TOOL_NOT_FOUND");
  t.is(router.notFound("prompts", "a__nope").code, "PROMPT_NOT_FOUND");
  const cause = new Error("spawn ENOENT");
  servers.connectErrors.set("late", { error: { code: "SERVER_UNAVAILABLE", message: "spawn ENOENT" }, cause });
  const unavailable = router.notFound("tools", "late__echo");
  t.is(unavailable.code, "SERVER_UNAVAILABLE");
  t.is(unavailable.cause, cause);
  t.is(unavailable.server, "late");
  t.is(unavailable.tool, "echo");
  t.regex(unavailable.message, /spawn ENOENT/);
});

test("a URI goes to the server given, else the first server that listed it exactly, else the first whose template matches", (t) => {
  const { router } = routerOver({ z: { command: "x" }, a: { command: "x" }, b: { command: "x" } }, {
    z: { resourceTemplates: [template("file:///{path}")] },
    a: { resources: [resource("file:///readme")] },
    b: { resources: [resource("file:///readme")], resourceTemplates: [template("db://{table}")] },
  });
  const serverOf = (uri: string, server?: string) => {
    const routed = router.uri(uri, server, undefined);
    return routed instanceof McpPoolError ? routed.code : routed.name;
  };
  t.is(serverOf("file:///readme"), "a"); // an exact listing beats an earlier server's template
  t.is(serverOf("file:///other"), "z"); // no exact listing: the first matching template
  t.is(serverOf("db://users"), "b");
  t.is(serverOf("file:///readme", "b"), "b"); // the caller's choice stands
  t.is(serverOf("mem://nothing"), "RESOURCE_NOT_FOUND");
  t.is(serverOf("file:///readme", "nosuch"), "RESOURCE_NOT_FOUND");
});

test("a session-scoped server routes to the session's own group, the same one every time, and refuses a request without a session", (t) => {
  const { router, config, sessions } = routerOver({ per: { command: "x", scope: "session" } }, {});
  const refused = router.group(config.servers.per!, undefined, {} as GroupHost);
  t.true(refused instanceof McpPoolError && refused.code === "INVALID_ARGUMENTS");
  const session = sessions.open("user-1", undefined);
  const group = router.group(config.servers.per!, session, {} as GroupHost);
  t.false(group instanceof McpPoolError);
  t.is((group as ServerGroup).sessionId, "user-1");
  t.is(router.group(config.servers.per!, session, {} as GroupHost), group);
});

test("pickConnection takes the ready connection with the fewest requests in flight below the cap, the earlier one on a tie", (t) => {
  const conn = (id: string, state: string, inFlight: number) => ({ id, state, inFlight }) as unknown as Connection;
  const a = conn("a", "ready", 2);
  const b = conn("b", "ready", 1);
  const c = conn("c", "ready", 1);
  const down = conn("d", "reconnecting", 0);
  t.is(pickConnection([a, b, c, down], 64), b);
  t.is(pickConnection([a, down], 2), undefined); // a is at the cap
  t.is(pickConnection([down], 64), undefined);
  t.is(pickConnection([], 64), undefined);
});

/**
 * Checks of what callers pass at run time (names, arguments, call and session options). TypeScript
 * types do not reach plain JavaScript callers nor values built at run time, and a bad value found
 * after a call was counted or sent leaks counters or fails late with the wrong code. Each check
 * returns why the input is unusable (the message of an INVALID_ARGUMENTS error), or undefined.
 */
import { MAX_TIMER_MS } from "./config.js";
import type { Progress } from "@modelcontextprotocol/client";

/** Longest session id: ids are map keys, event payloads and stats entries, not payloads. */
export const MAX_SESSION_ID_LENGTH = 256;

/** Deepest nesting of objects and arrays in a call's arguments (the arguments object is level 0). */
export const MAX_ARGS_DEPTH = 100;

/**
 * Most objects and arrays in one call's arguments: bounds the walk over an object graph that shares
 * its parts (JSON would copy each part every time it is referenced, so such a graph can be
 * exponentially larger than it looks).
 */
export const MAX_ARGS_CONTAINERS = 1_000_000;

/** The one rule for a session id, from `pool.session(id)` and from `callTool`'s `sessionId` alike. */
export function sessionIdProblem(id: unknown): string | undefined {
  if (typeof id !== "string") return `a session id must be a string, not ${kindOf(id)}`;
  if (id.length === 0 || id.length > MAX_SESSION_ID_LENGTH) return `a session id must be 1 to ${MAX_SESSION_ID_LENGTH} characters long, not ${id.length}`;
  return undefined;
}

/** The options of one call as read, once, and checked (see readCall). */
export interface CheckedCallOptions {
  sessionId: string | undefined;
  /** The server to send a resource request (or a completion) to, instead of routing it by URI. */
  server: string | undefined;
  timeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  onProgress: ((progress: Progress) => void) | undefined;
}

/**
 * A tool's pool name and the options of one call (anything but the arguments): the options as read once
 * and checked, or what is wrong with them. The call uses only what was read here: a getter on the caller's
 * object is not asked again, so it cannot hand the pool something else after the check.
 */
export function readCall(name: unknown, options: unknown, what = "a tool name"): CheckedCallOptions | string {
  if (typeof name !== "string" || name === "") return `${what} must be a non-empty string, not ${kindOf(name)}`;
  if (options === null || typeof options !== "object" || Array.isArray(options)) return `call options must be an object, not ${kindOf(options)}`;
  let read: Record<string, unknown>;
  try {
    const { sessionId, server, timeoutMs, signal, onProgress } = options as Record<string, unknown>;
    read = { sessionId, server, timeoutMs, signal, onProgress };
  } catch (error) {
    return `reading the call options threw: ${describe(error)}`;
  }
  return callOptionsProblem(read) ?? (read as unknown as CheckedCallOptions);
}

function callOptionsProblem(options: Record<string, unknown>): string | undefined {
  const { sessionId, server, timeoutMs, signal, onProgress } = options;
  if (server !== undefined && (typeof server !== "string" || server === "")) return `server must be a server's name, not ${kindOf(server)}`;
  if (sessionId !== undefined) {
    const problem = sessionIdProblem(sessionId);
    if (problem) return `sessionId: ${problem}`;
  }
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)) {
    return `timeoutMs must be a number of milliseconds above 0 and at most ${MAX_TIMER_MS}, not ${typeof timeoutMs === "number" ? timeoutMs : kindOf(timeoutMs)}`;
  }
  // A real AbortSignal only: the connection calls its listener methods, which must not be user code.
  if (signal !== undefined && !(signal instanceof AbortSignal)) return `signal must be an AbortSignal, not ${kindOf(signal)}`;
  if (onProgress !== undefined && typeof onProgress !== "function") return `onProgress must be a function, not ${kindOf(onProgress)}`;
  return undefined;
}

/** The options of `pool.session(id, options)`. */
export function sessionOptionsProblem(options: unknown): string | undefined {
  if (options === null || typeof options !== "object" || Array.isArray(options)) return `session options must be an object, not ${kindOf(options)}`;
  try {
    return headersProblem((options as Record<string, unknown>).headers) ?? handlersProblem(options as Record<string, unknown>);
  } catch (error) {
    return `reading the session options threw: ${describe(error)}`;
  }
}

/** The handlers for requests from servers, of the pool or of a session. */
export function handlersProblem(options: Record<string, unknown>): string | undefined {
  for (const name of ["onSampling", "onElicitation"]) {
    const fn = options[name];
    if (fn !== undefined && typeof fn !== "function") return `${name} must be a function, not ${kindOf(fn)}`;
  }
  const roots = options.roots;
  if (roots === undefined || typeof roots === "function") return undefined;
  if (!Array.isArray(roots)) return `roots must be a list of roots or a function, not ${kindOf(roots)}`;
  for (const [i, root] of roots.entries()) {
    if (root === null || typeof root !== "object" || typeof (root as { uri?: unknown }).uri !== "string" || !(root as { uri: string }).uri.startsWith("file://")) {
      return `roots[${i}] must be { uri: "file://…", name? }`;
    }
  }
  return undefined;
}

function headersProblem(headers: unknown): string | undefined {
  if (headers === undefined || typeof headers === "function") return undefined;
  return headerValuesProblem(headers);
}

/** Headers as an object of names to strings (a session's, or what a headers function gave). */
export function headerValuesProblem(headers: unknown): string | undefined {
  if (headers === null || typeof headers !== "object" || Array.isArray(headers)) return `headers must be an object of header names to strings, not ${kindOf(headers)}`;
  const seen = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    if (!HEADER_NAME.test(name)) return `headers: ${JSON.stringify(name)} is not a valid HTTP header name`;
    if (typeof value !== "string") return `headers: the value of ${name} must be a string, not ${kindOf(value)}`;
    if (!HEADER_VALUE.test(value)) return `headers: the value of ${name} holds a line break or control character`;
    const lower = name.toLowerCase();
    if (seen.has(lower)) return `headers: ${name} is given twice (header names are case-insensitive)`;
    seen.add(lower);
  }
  return undefined;
}

/** RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 9110 field value: no CR, LF, NUL or other control characters but tab. */
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\uffff]*$/;

/** Same header names (case-insensitive) with the same values. */
export function sameHeaders(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keysA = Object.keys(a);
  const keysB = Object.keys(b);
  if (keysA.length !== keysB.length) return false;
  const byName = new Map<string, string>();
  for (const k of keysA) byName.set(k.toLowerCase(), a[k]!);
  for (const k of keysB) if (byName.get(k.toLowerCase()) !== b[k]) return false;
  return true;
}

/**
 * A call's arguments must be JSON data, exactly: plain objects, arrays, strings, finite numbers,
 * booleans and null (a member whose value is `undefined` is left out, as JSON.stringify does). Anything
 * else would be refused by the thread boundary (functions, symbols) or by the server's JSON encoder
 * (BigInt, cycles), or silently changed on the way (NaN → null, a Date or Map → something else).
 * One walk, no copy; a member that is a primitive costs one `typeof`.
 */
export function argsProblem(args: unknown): string | undefined {
  if (args === null || typeof args !== "object" || Array.isArray(args)) return `arguments must be an object, not ${kindOf(args)}`;
  try {
    const found = walk(args, 0, MAX_ARGS_CONTAINERS);
    return typeof found === "number" ? undefined : failureText(args, found);
  } catch (error) {
    // A getter or a proxy of the caller's threw while being read.
    return `reading the arguments threw: ${describe(error)}`;
  }
}

function failureText(args: object, found: Failure): string {
  const path = found.path.reverse();
  if (found.why === DEEP) {
    // Tell a cycle from plain depth: follow the path and look for an object met twice on it.
    const seen = new Set<unknown>([args]);
    let at: unknown = args;
    for (let i = 0; i < path.length; i++) {
      at = (at as Record<string | number, unknown>)[path[i]!];
      if (seen.has(at)) return `arguments${pathText(path.slice(0, i + 1))} refers back to an object that contains it (circular): not JSON`;
      seen.add(at);
    }
    return `arguments${pathText(path)} is nested deeper than ${MAX_ARGS_DEPTH} levels`;
  }
  return `arguments${pathText(path)} ${found.why}`;
}

interface Failure {
  /** Keys from the failing value up to the arguments object (reversed once, at the end). */
  path: Array<string | number>;
  why: string;
}

const DEEP = "is nested too deep";

/** Walks one object or array; returns the container budget left, or what is wrong and where. */
function walk(value: object, depth: number, budget: number): number | Failure {
  if (depth >= MAX_ARGS_DEPTH) return { path: [], why: DEEP };
  if (--budget < 0) return { path: [], why: `holds more than ${MAX_ARGS_CONTAINERS} objects and arrays` };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      // Inline: a primitive element costs one typeof and no call.
      if (typeof v === "string" || typeof v === "boolean" || v === null) continue;
      if (typeof v === "object") {
        const r = walk(v, depth + 1, budget);
        if (typeof r !== "number") return (r.path.push(i), r);
        budget = r;
        continue;
      }
      const why = primitiveProblem(v);
      if (why !== undefined) return { path: [i], why: v === undefined ? "is undefined (an array element must be a JSON value: use null)" : why };
    }
    return budget;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  // A plain object (or one from another realm, whose Object.prototype has no prototype either).
  if (proto !== Object.prototype && proto !== null && Object.getPrototypeOf(proto) !== null) {
    return { path: [], why: `is ${kindOf(value)}, not a plain object (not JSON)` };
  }
  // for-in (no key array): on a plain object it yields the own enumerable string keys, what JSON.stringify
  // and the thread boundary read (a key added to Object.prototype itself would be checked too, harmlessly).
  for (const key in value) {
    const v: unknown = (value as Record<string, unknown>)[key];
    if (typeof v === "string" || typeof v === "boolean" || v === null || v === undefined) continue;
    if (typeof v === "object") {
      const r = walk(v, depth + 1, budget);
      if (typeof r !== "number") return (r.path.push(key), r);
      budget = r;
      continue;
    }
    const why = primitiveProblem(v);
    if (why !== undefined) return { path: [key], why };
  }
  return budget;
}

function primitiveProblem(v: unknown): string | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? undefined : `is ${v}, not a JSON number`;
  return `is ${kindOf(v)} (not JSON)`;
}

/** `.a[0]["b c"]`, shortened past 8 keys (a path 100 levels deep says nothing more than its start). */
function pathText(path: ReadonlyArray<string | number>): string {
  let text = "";
  for (const key of path.slice(0, 8)) text += typeof key === "number" ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
  return path.length > 8 ? `${text}…` : text;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : kindOf(error);
}

/** A short, safe description of a value's kind (never calls the value's own methods). */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  switch (typeof value) {
    case "undefined":
      return "undefined";
    case "string":
      return value.length > 40 ? "a string" : JSON.stringify(value);
    case "number":
    case "boolean":
      return String(value);
    case "bigint":
      return "a BigInt";
    case "symbol":
      return "a Symbol";
    case "function":
      return "a function";
  }
  let name: unknown;
  try {
    name = Object.getPrototypeOf(value)?.constructor?.name;
  } catch {
    name = undefined;
  }
  return typeof name === "string" && name !== "" && name !== "Object" ? `a ${name}` : "an object";
}

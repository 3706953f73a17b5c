/**
 * Whether a URI is one of a resource template's URIs (RFC 6570, as MCP servers use it), to route a
 * `resources/read` of an unlisted URI to the server whose template matches it. Pure: no threads, no I/O.
 *
 * What each expression matches (variable names, `*` and `:n` modifiers are not looked at):
 * - `{var}`, `{a,b}`: one or more characters, none of `/`, `?`, `#`;
 * - `{+var}`: one or more characters of any kind (reserved expansion);
 * - `{#var}`: nothing, or `#` and anything after it;
 * - `{/var}`: nothing, or one or more `/`-led segments (no `?`, `#` in them);
 * - `{.var}`, `{;var}`: nothing, or `.` (`;`) and characters other than `/`, `?`, `#`;
 * - `{?a,b}`, `{&a}`: nothing, or `?` (`&`) and characters other than `#` (the query, in any order).
 * Literal parts match exactly. A template that does not parse (an unclosed `{`, an operator RFC 6570
 * reserves) matches nothing.
 *
 * A template is compiled once into a small automaton that is run without backtracking: matching costs
 * at most the URI's length times the template's number of expressions (see MAX_EXPRESSIONS), whatever
 * the input, where a regular expression of the same template can take time exponential in it.
 */

/** Templates with more expressions than this match nothing: it bounds the cost of matching per character. */
export const MAX_EXPRESSIONS = 32;
/** Compiled templates kept; past this the oldest is dropped (a server may list templates without end). */
const CACHE_SIZE = 1_024;

// State kinds of the automaton.
const CHAR = 0; // consumes the one character code `arg`
const CLASS = 1; // consumes one character of class `arg`
const SPLIT = 2; // no input: goes on to both `out` and `out2`
const MATCH = 3;

// Character classes of expression values.
const ANY = 0;
const SEGMENT = 1; // not / ? #
const NOT_HASH = 2; // not #

const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;

function inClass(cls: number, c: number): boolean {
  if (cls === ANY) return true;
  if (cls === NOT_HASH) return c !== HASH;
  return c !== SLASH && c !== QUESTION && c !== HASH;
}

/** A compiled template: the automaton's states as parallel arrays, and a literal prefix for a quick refusal. */
interface Matcher {
  kind: Uint8Array;
  arg: Int32Array;
  out: Int32Array;
  out2: Int32Array;
  prefix: string;
}

/** Never matches: a template that does not parse. */
const NOTHING: Matcher = { kind: new Uint8Array([]), arg: new Int32Array(0), out: new Int32Array(0), out2: new Int32Array(0), prefix: "" };

const cache = new Map<string, Matcher>();

/** True when `uri` is one of the URIs `template` describes (see the module's note for the rules). */
export function matchesUriTemplate(template: string, uri: string): boolean {
  let matcher = cache.get(template);
  if (matcher === undefined) {
    matcher = compile(template);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(template, matcher);
  }
  return run(matcher, uri);
}

/** Growable state arrays while compiling. */
class Builder {
  kind: number[] = [];
  arg: number[] = [];
  out: number[] = [];
  out2: number[] = [];

  get next(): number {
    return this.kind.length;
  }

  #push(kind: number, arg: number, out: number, out2 = -1): void {
    this.kind.push(kind);
    this.arg.push(arg);
    this.out.push(out);
    this.out2.push(out2);
  }

  char(code: number): void {
    this.#push(CHAR, code, this.next + 1);
  }

  /** One or more characters of `cls`: one state that loops back through a split (one live state per expression). */
  plus(cls: number): void {
    const first = this.next;
    this.#push(CLASS, cls, first + 1);
    this.#push(SPLIT, 0, first, first + 2);
  }

  /** Nothing, or `lead` and zero or more characters of `cls`; with `repeat`, any number of those. */
  optional(lead: number, cls: number, repeat: boolean): void {
    const split = this.next;
    // split → (lead, star) → after; the star's exit leads back to the split when the group repeats.
    const after = split + 4;
    this.#push(SPLIT, 0, split + 1, after);
    this.#push(CHAR, lead, split + 2);
    this.#push(SPLIT, 0, split + 3, repeat ? split : after);
    this.#push(CLASS, cls, split + 2);
  }

  match(): Matcher {
    this.#push(MATCH, 0, -1);
    return { kind: Uint8Array.from(this.kind), arg: Int32Array.from(this.arg), out: Int32Array.from(this.out), out2: Int32Array.from(this.out2), prefix: "" };
  }
}

function compile(template: string): Matcher {
  const b = new Builder();
  let prefix: string | undefined;
  let expressions = 0;
  let i = 0;
  while (i < template.length) {
    const open = template.indexOf("{", i);
    const end = open === -1 ? template.length : open;
    for (let j = i; j < end; j++) b.char(template.charCodeAt(j));
    if (prefix === undefined) prefix = template.slice(i, end);
    if (open === -1) break;
    const close = template.indexOf("}", open + 1);
    if (close === -1 || close === open + 1 || ++expressions > MAX_EXPRESSIONS) return NOTHING;
    if (!expression(b, template.slice(open + 1, close))) return NOTHING;
    i = close + 1;
  }
  const matcher = b.match();
  matcher.prefix = prefix ?? "";
  return matcher;
}

/** Adds what one expression (its text between the braces) matches; false for one RFC 6570 reserves or that is malformed. */
function expression(b: Builder, body: string): boolean {
  const op = body[0]!;
  const vars = "+#./;?&".includes(op) ? body.slice(1) : body;
  if (vars.length === 0 || /[{}]/.test(vars) || "=,!@|".includes(op)) return false;
  switch (op) {
    case "+":
      b.plus(ANY);
      break;
    case "#":
      b.optional(HASH, ANY, false);
      break;
    case "/":
      b.optional(SLASH, SEGMENT, true);
      break;
    case ".":
    case ";":
      b.optional(op.charCodeAt(0), SEGMENT, false);
      break;
    case "?":
    case "&":
      b.optional(op.charCodeAt(0), NOT_HASH, false);
      break;
    default:
      b.plus(SEGMENT);
  }
  return true;
}

/** Runs the automaton over `uri`, every live state at once (Thompson's construction): linear in `uri`. */
function run(m: Matcher, uri: string): boolean {
  const n = m.kind.length;
  if (n === 0 || !uri.startsWith(m.prefix)) return false;
  let current = new Int32Array(n);
  let next = new Int32Array(n);
  // The step at which each state was last added: a state is added once per step.
  const seen = new Int32Array(n).fill(-1);
  // Each state, taken once per step, pushes at most two others.
  const stack = new Int32Array(2 * n + 1);
  let count = add(m, current, 0, 0, seen, stack, 0);
  for (let p = 0; p < uri.length && count > 0; p++) {
    const c = uri.charCodeAt(p);
    let nextCount = 0;
    for (let k = 0; k < count; k++) {
      const s = current[k]!;
      const kind = m.kind[s];
      if ((kind === CHAR && m.arg[s] === c) || (kind === CLASS && inClass(m.arg[s]!, c))) {
        nextCount = add(m, next, nextCount, m.out[s]!, seen, stack, p + 1);
      }
    }
    const swap = current;
    current = next;
    next = swap;
    count = nextCount;
  }
  for (let k = 0; k < count; k++) if (m.kind[current[k]!] === MATCH) return true;
  return false;
}

/** Adds `state` and every state it reaches without input to `list` (from `count`); returns the new count. */
function add(m: Matcher, list: Int32Array, count: number, state: number, seen: Int32Array, stack: Int32Array, step: number): number {
  let top = 0;
  stack[top++] = state;
  while (top > 0) {
    const s = stack[--top]!;
    if (seen[s] === step) continue;
    seen[s] = step;
    if (m.kind[s] === SPLIT) {
      stack[top++] = m.out2[s]!;
      stack[top++] = m.out[s]!;
    } else {
      list[count++] = s;
    }
  }
  return count;
}

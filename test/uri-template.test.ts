/**
 * URI-template matching (RFC 6570 as MCP servers use it), pure: a table of templates and URIs, templates
 * that match nothing, and hostile input that would make a backtracking matcher take exponential time.
 */
import test from "ava";
import { MAX_EXPRESSIONS, matchesUriTemplate } from "../src/uri-template.js";

/** [template, uri, matches] */
const TABLE: Array<[string, string, boolean]> = [
  // level 1 {var}: one or more characters, none of / ? #
  ["file:///{path}", "file:///readme.txt", true],
  ["file:///{path}", "file:///a/b", false],
  ["file:///{path}", "file:///", false],
  ["file:///{path}", "file:///a?x=1", false],
  ["file:///{path}", "file:///a#top", false],
  ["users://{id}/profile", "users://42/profile", true],
  ["users://{id}/profile", "users://42/posts", false],
  ["users://{id}/profile", "users:///profile", false],
  ["users://{id}/profile", "users://42/profile/", false],
  ["api://{a,b}", "api://1,2", true],
  ["api://{a}-{b}", "api://x-y-z", true],
  // {+var}: reserved expansion, any characters
  ["file:///{+path}", "file:///a/b/c.txt", true],
  ["file:///{+path}", "file:///a?b=1#c", true],
  ["file:///{+path}", "file:///", false],
  ["git://{+repo}/blob/{sha}", "git://org/team/repo/blob/abc123", true],
  ["git://{+repo}/blob/{sha}", "git://org/team/repo/tree/abc123", false],
  // {#var}: optional fragment
  ["doc://x{#section}", "doc://x", true],
  ["doc://x{#section}", "doc://x#intro/part?2", true],
  ["doc://x{#section}", "doc://xy", false],
  // {/var}: optional path segments
  ["repo://{owner}{/path}", "repo://me", true],
  ["repo://{owner}{/path}", "repo://me/a", true],
  ["repo://{owner}{/path*}", "repo://me/a/b/c", true],
  ["repo://{owner}{/path}", "repo://me/a?x", false],
  // {.var} and {;var}
  ["file://{name}{.ext}", "file://a", true],
  ["file://{name}{.ext}", "file://a.txt", true],
  ["file://{name}{.ext}", "file://a.tar/gz", false],
  ["m://{x}{;v}", "m://a;v=1", true],
  // {?a,b} and {&a}: optional query expansions
  ["search://items{?q,limit}", "search://items", true],
  ["search://items{?q,limit}", "search://items?q=x&limit=3", true],
  ["search://items{?q,limit}", "search://items?limit=3", true],
  ["search://items{?q,limit}", "search://itemsX", false],
  ["search://items{?q,limit}", "search://items#x", false],
  ["search://items?q={q}{&page}", "search://items?q=a", true],
  ["search://items?q={q}{&page}", "search://items?q=a&page=2", true],
  ["search://items?q={q}{&page}", "search://items?q=a?page=2", false],
  // literal parts exactly, regular-expression characters included
  ["mem://x", "mem://x", true],
  ["mem://x", "mem://X", false],
  ["mem://x", "mem://x/", false],
  ["a.b://{x}", "aXb://1", false],
  ["a.b://{x}", "a.b://1", true],
  ["data://(1)+[{x}]*", "data://(1)+[v]*", true],
  ["data://(1)+[{x}]*", "data://11[v]", false],
  // templates that do not parse match nothing
  ["file:///{path", "file:///{path", false],
  ["file:///{path", "file:///x", false],
  ["x://{}", "x://{}", false],
  ["x://{}", "x://", false],
  ["x://{=a}", "x://1", false],
  ["x://{|a}", "x://1", false],
];

for (const [template, uri, expected] of TABLE) {
  test(`matchesUriTemplate("${template}", "${uri}") is ${expected}`, (t) => {
    t.is(matchesUriTemplate(template, uri), expected);
    // Compiled once and kept: the second answer is the same.
    t.is(matchesUriTemplate(template, uri), expected);
  });
}

test(`a template with more than ${MAX_EXPRESSIONS} expressions matches nothing; one with ${MAX_EXPRESSIONS} works`, (t) => {
  const at = (n: number) => "x://" + "{a}-".repeat(n);
  const uri = (n: number) => "x://" + "1-".repeat(n);
  t.true(matchesUriTemplate(at(MAX_EXPRESSIONS), uri(MAX_EXPRESSIONS)));
  t.false(matchesUriTemplate(at(MAX_EXPRESSIONS + 1), uri(MAX_EXPRESSIONS + 1)));
});

/** Milliseconds `fn` takes. */
function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

test("hostile 100 KB URIs against templates that make a backtracking matcher explode are refused in bounded time", (t) => {
  const cases: Array<[string, string]> = [
    // (.+)a(.+)a(.+)a(.+)a(.+)b on a's only: a regular expression tries every way to split the a's.
    ["x://{+a}a{+b}a{+c}a{+d}a{+e}b", "x://" + "a".repeat(100_000)],
    ["{/a}{/b}{/c}{/d}{/e}z", "/".repeat(100_000)],
    ["s://{a}{b}{c}{d}{e}!", "s://" + "x".repeat(100_000)],
    ["q://p{?a}{&b}{&c}{#d}\u0000", "q://p?" + "&".repeat(100_000)],
    // The most expressions allowed, each live at every character.
    ["w://" + "{+a}".repeat(MAX_EXPRESSIONS) + "!", "w://" + "w".repeat(100_000)],
  ];
  for (const [template, uri] of cases) {
    const ms = timed(() => t.false(matchesUriTemplate(template, uri)));
    t.log(`${template.slice(0, 40)}: ${ms.toFixed(1)} ms`);
    // Linear is a few milliseconds to a few hundred on a busy machine; backtracking would not end in minutes.
    t.true(ms < 3_000, `${template} took ${ms.toFixed(0)} ms`);
  }
});

test("a 100 KB URI that matches is matched in bounded time", (t) => {
  const uri = "file:///" + "dir/".repeat(25_000) + "leaf.txt";
  const ms = timed(() => {
    t.true(matchesUriTemplate("file:///{+path}", uri));
    t.true(matchesUriTemplate("file://{/segments*}", uri));
    t.false(matchesUriTemplate("file:///{path}", uri));
  });
  t.true(ms < 3_000, `took ${ms.toFixed(0)} ms`);
});

/**
 * The worker's collection once a connection is quiet (workers/idle-gc.ts): when it runs (after a quiet
 * delay, never while a request is in flight or arriving, not at all once stopped), and that the
 * inspector's collection it uses does free this thread's garbage. Short delays instead of the real 5 s.
 */
import test from "ava";
import { getHeapStatistics } from "node:v8";
import { collectGarbage, IdleCollector } from "../workers/idle-gc.js";

const DELAY_MS = 30;
/** Timers may fire a millisecond early by the clock read here. */
const SLACK_MS = 2;

/** A collector whose collections are counted, and the promise of its first. */
function counted(busy: () => boolean = () => false): { collector: IdleCollector; count: () => number; first: Promise<number> } {
  let count = 0;
  let resolve!: (at: number) => void;
  const first = new Promise<number>((r) => (resolve = r));
  const collector = new IdleCollector(busy, DELAY_MS, async () => {
    count++;
    resolve(performance.now());
  });
  return { collector, count: () => count, first };
}

function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("collects once, a quiet delay after it is armed", async (t) => {
  const { collector, count, first } = counted();
  t.teardown(() => collector.stop());
  const armed = performance.now();
  collector.arm();
  const at = await within(5_000, "the collection", first);
  t.true(at - armed >= DELAY_MS - SLACK_MS);
  await sleep(DELAY_MS * 3);
  t.is(count(), 1, "once per arm, not every delay");
});

test("a request batch that arrived during the delay puts the collection off by another delay", async (t) => {
  const { collector, first } = counted();
  t.teardown(() => collector.stop());
  const armed = performance.now();
  collector.arm();
  collector.touch();
  const at = await within(5_000, "the collection", first);
  t.true(at - armed >= 2 * DELAY_MS - SLACK_MS, `collected ${(at - armed).toFixed(1)} ms after arming`);
});

test("no collection while a request is in flight", async (t) => {
  let busy = true;
  const { collector, first } = counted(() => busy);
  t.teardown(() => collector.stop());
  const armed = performance.now();
  collector.arm();
  const idleAt = await new Promise<number>((resolve) => setTimeout(() => resolve(performance.now()), 3 * DELAY_MS));
  busy = false;
  const at = await within(5_000, "the collection", first);
  t.true(at >= idleAt, `collected ${(idleAt - at).toFixed(1)} ms before the request settled`);
  t.true(at - armed >= 3 * DELAY_MS - SLACK_MS);
});

test("stop() before the delay: no collection", async (t) => {
  const { collector, count } = counted();
  collector.arm();
  collector.stop();
  await sleep(DELAY_MS * 3);
  t.is(count(), 0);
});

test("collectGarbage frees this thread's unreachable objects", async (t) => {
  const holder: { objects: unknown[] | undefined } = { objects: [] };
  for (let i = 0; i < 300_000; i++) holder.objects!.push({ i, text: `object ${i}` });
  holder.objects = undefined;
  const before = getHeapStatistics().used_heap_size;
  await within(10_000, "collectGarbage", collectGarbage());
  const after = getHeapStatistics().used_heap_size;
  // 300,000 objects with a string each: ~20 MB, unreachable.
  t.true(before - after > 8 * 1024 * 1024, `used heap ${(before / 1048576).toFixed(1)} → ${(after / 1048576).toFixed(1)} MB`);
});

/**
 * Reconnect backoff (src/backoff.ts), the one formula behind a host reopening its server, the main thread
 * replacing a dead worker, and a discovery's retries: pure, tested without threads.
 */
import test from "ava";
import { backoffDelay } from "../src/common/backoff.js";

const JUST_UNDER_ONE = 1 - 2 ** -40;

test("backoffDelay is full jitter under a ceiling that doubles from initialDelayMs per failure up to maxDelayMs", (t) => {
  t.deepEqual(
    [1, 2, 3, 4, 5, 6].map((failures) => backoffDelay(failures, 250, 4_000, () => JUST_UNDER_ONE)),
    [249, 499, 999, 1_999, 3_999, 3_999],
  );
  t.is(backoffDelay(3, 250, 4_000, () => 0), 0, "the jitter reaches down to no delay");
  t.is(backoffDelay(3, 250, 4_000, () => 0.5), 500);
});

test("backoffDelay waits nothing before a first attempt and stays finite after very many failures", (t) => {
  t.is(backoffDelay(0, 250, 4_000, () => JUST_UNDER_ONE), 0);
  t.is(backoffDelay(10_000, 250, 4_000, () => JUST_UNDER_ONE), 3_999);
  t.is(backoffDelay(10_000, 250, Number.MAX_SAFE_INTEGER, () => 0.5), 250 * 2 ** 29);
});

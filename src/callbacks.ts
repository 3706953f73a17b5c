/**
 * Running the user's callbacks (onProgress, pool event listeners) from the pool's own code: they run
 * inside port listeners and timers, where an exception would be uncaught (the host exits) or would
 * cut the pool's bookkeeping short. What a callback throws, or its promise rejects with, is reported
 * as a process warning (`McpPoolWarning`, once per callback function) and goes no further.
 */

/** Callbacks already reported: one warning each, not one per progress notification. */
const reported = new WeakSet<object>();

/** Calls `fn(arg)`; nothing it throws or rejects with escapes. */
export function callSafely(fn: (arg: never) => unknown, arg: unknown, what: string): void {
  try {
    settle((fn as (arg: unknown) => unknown)(arg), fn, what);
  } catch (error) {
    report(fn, what, error);
  }
}

/** Calls `fn` on `thisArg` with `args`; nothing it throws or rejects with escapes. */
export function applySafely(fn: (...args: never[]) => unknown, thisArg: unknown, args: unknown[], what: string): void {
  try {
    settle(Reflect.apply(fn, thisArg, args), fn, what);
  } catch (error) {
    report(fn, what, error);
  }
}

/** An async callback's rejection would be an unhandled rejection (which ends the host, by default). */
function settle(result: unknown, fn: object, what: string): void {
  if (result !== null && typeof result === "object" && typeof (result as PromiseLike<unknown>).then === "function") {
    (result as PromiseLike<unknown>).then(undefined, (error: unknown) => report(fn, what, error));
  }
}

function report(fn: object, what: string, error: unknown): void {
  if (reported.has(fn)) return;
  reported.add(fn);
  let message: string;
  try {
    message = error instanceof Error ? error.message : String(error);
  } catch {
    message = "(an error that cannot be shown)";
  }
  const warning = new Error(`${what} threw (the pool ignored it; further errors of this callback are not reported): ${message}`, { cause: error });
  warning.name = "McpPoolWarning";
  process.emitWarning(warning);
}

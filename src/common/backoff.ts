/**
 * Shared by both sides (like protocol.ts and process-group.ts): a connection's host reopening its server,
 * the main thread replacing a dead worker and retrying a discovery.
 *
 * Delay before reconnect attempt number `failures` (1 = after the first failure):
 * exponential backoff with full jitter, a random delay in [0, min(maxDelayMs, initialDelayMs · 2^(failures-1))].
 */
export function backoffDelay(failures: number, initialDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  if (failures <= 0) return 0;
  const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(failures - 1, 30));
  return Math.floor(random() * ceiling);
}

/**
 * The JSON-RPC ids of the requests the host sends itself (the request path, requests.ts), which are
 * also their progress tokens.
 *
 * Numbered from FIRST_WIRE_ID: the SDK numbers its own requests on a link (initialize, the listings,
 * pings) from 0, and would need a billion of them to reach ours. Plain integers, because some servers
 * refuse string ids they find unusual (the Ruby SDK accepts only [A-Za-z0-9_-]) or take only integers;
 * and below 2^31, for servers that parse ids as 32-bit integers. A worker that gets that far starts
 * again here, skipping numbers still in flight.
 */
export const FIRST_WIRE_ID = 1_000_000_000;
export const LAST_WIRE_ID = 2 ** 31 - 1;

/** One of our ids written as a string: ten digits, no sign, no leading zero. */
const WIRE_ID_TEXT = /^[1-9][0-9]{9}$/;

/**
 * `id` (a JSON-RPC id or a progress token) as one of our ids, or `undefined` when it cannot be ours. A
 * server that echoes the id as a string ("1000000007") is understood too, as the SDK's own client
 * understands it (it matches responses and progress by `Number(id)`).
 */
export function ourWireId(id: unknown): number | undefined {
  const n = typeof id === "number" ? id : typeof id === "string" && WIRE_ID_TEXT.test(id) ? Number(id) : Number.NaN;
  return n >= FIRST_WIRE_ID && n <= LAST_WIRE_ID ? n : undefined;
}

/** The id after `id`, wrapping around within our range. */
export function nextWireId(id: number): number {
  return id >= LAST_WIRE_ID ? FIRST_WIRE_ID : id + 1;
}

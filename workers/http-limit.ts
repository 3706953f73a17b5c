/**
 * A `fetch` for the SDK's HTTP transports that refuses an oversized message while it streams in.
 * JSON bodies count whole; SSE bodies count per event (bytes since the last blank line).
 */
import type { FetchLike } from "@modelcontextprotocol/client";

export class MessageTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`message larger than ${maxBytes} bytes refused`);
  }
}

const LF = 0x0a;

/** `onResponse` is told the status of every response, as it arrives. */
export function sizeLimitedFetch(maxBytes: number, onOversize: () => void, onResponse?: (status: number) => void): FetchLike {
  return async (url, init) => {
    const response = await fetch(url, init);
    onResponse?.(response.status);
    if (!response.body) return response;
    const perEvent = (response.headers.get("content-type") ?? "").includes("text/event-stream");
    let count = 0;
    let lastWasLf = false;
    const limiter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (perEvent) {
          // Find the last event boundary ("\n\n", CRs aside) in this chunk; count only what follows it.
          let boundary = -1;
          for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
            const prev = i > 0 ? chunk[i - 1] : lastWasLf ? LF : -1;
            const prev2 = i > 1 ? chunk[i - 2] : -1;
            if (prev === LF || (prev === 0x0d && prev2 === LF)) boundary = i;
          }
          count = boundary === -1 ? count + chunk.length : chunk.length - boundary - 1;
          lastWasLf = chunk.length > 0 && chunk[chunk.length - 1] === LF;
        } else {
          count += chunk.length;
        }
        if (count > maxBytes) {
          onOversize();
          controller.error(new MessageTooLargeError(maxBytes));
          return;
        }
        controller.enqueue(chunk);
      },
    });
    return new Response(response.body.pipeThrough(limiter), {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

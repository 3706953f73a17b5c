import { ERROR_CODES, type ErrorCode, type WireError } from "./common/protocol.js";

export { ERROR_CODES, type ErrorCode };

export interface McpPoolErrorOptions {
  server?: string;
  tool?: string;
  mcpCode?: number;
  data?: unknown;
  cause?: unknown;
}

/**
 * The one error class the pool throws. Branch on `code` (stable strings listed in `ERROR_CODES`),
 * never on the message text.
 */
export class McpPoolError extends Error {
  override readonly name = "McpPoolError";
  readonly code: ErrorCode;
  /** Configured name of the server involved, when there is one. */
  readonly server: string | undefined;
  /** The server's own tool name (not the pool name), when a tool was involved. */
  readonly tool: string | undefined;
  /** The JSON-RPC error code, when the server answered with a JSON-RPC error. */
  readonly mcpCode: number | undefined;
  /** Extra data from the server's JSON-RPC error, or details from the pool. */
  readonly data: unknown;

  constructor(code: ErrorCode, message: string, options: McpPoolErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.server = options.server;
    this.tool = options.tool;
    this.mcpCode = options.mcpCode;
    this.data = options.data;
  }

  static fromWire(wire: WireError, server?: string, tool?: string): McpPoolError {
    // An HTTP status the server answered with (a 401 of expired credentials): the cause, as an error saying it.
    const status = (wire.data as { httpStatus?: unknown } | undefined)?.httpStatus;
    const cause = typeof status === "number" ? Object.assign(new Error(`HTTP ${status}`), { status }) : undefined;
    return new McpPoolError(wire.code, wire.message, { server, tool, mcpCode: wire.mcpCode, data: wire.data, cause });
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, server: this.server, tool: this.tool, mcpCode: this.mcpCode };
  }
}

export function isMcpPoolError(value: unknown): value is McpPoolError {
  return value instanceof McpPoolError;
}

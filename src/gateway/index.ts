/** `mcp-worker-pool/gateway`: the pool served as one Streamable HTTP MCP endpoint (see docs/gateway.md). */
export { serveGateway } from "./gateway.js";
export type { Gateway, GatewayOptions, GatewayLogEvent } from "./gateway.js";
export { tokensFrom } from "./auth.js";

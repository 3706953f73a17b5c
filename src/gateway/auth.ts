/**
 * Bearer tokens: who a downstream request comes from. Tokens are compared in constant time (SHA-256
 * digests of equal length through `timingSafeEqual`, every configured token compared every time), and a
 * refusal never says which part failed (no header, another scheme, an unknown token all read the same).
 */
import { createHash, timingSafeEqual } from "node:crypto";

export class Tokens {
  readonly #digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.#digests = tokens.map(digest);
  }

  get required(): boolean {
    return this.#digests.length > 0;
  }

  /**
   * The principal of `authorization` (`token-1`, `token-2`, … in the configured order: stable across
   * gateway replicas that share the config, and no part of the secret), or undefined when it is refused.
   */
  principalOf(authorization: string | undefined): string | undefined {
    const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? "");
    // An absent or malformed header is compared too, so that its refusal takes the same time.
    const presented = digest(match?.[1] ?? "");
    let found = -1;
    for (let i = 0; i < this.#digests.length; i++) {
      if (timingSafeEqual(presented, this.#digests[i]!) && match) found = i;
    }
    return found < 0 ? undefined : `token-${found + 1}`;
  }
}

function digest(value: string): Buffer {
  return createHash("sha256").update(value, "utf8").digest();
}

/** Tokens from the config or, when it has none, from `MCP_POOL_TOKENS` (comma-separated). */
export function tokensFrom(configured: readonly string[] | undefined, env: string | undefined): string[] {
  if (configured && configured.length > 0) return [...configured];
  return (env ?? "").split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

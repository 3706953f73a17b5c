/**
 * Pools for tests: one per test, closed by its teardown; or one shared by the tests of a file that neither
 * change its catalog nor count its calls, closed after them.
 */
import test, { type ExecutionContext } from "ava";
import { createPool, type McpPool, type PoolConfigInput } from "../../src/index.js";

/** A pool for this test alone, closed when it ends (passed or not). */
export async function testPool(t: ExecutionContext, config: PoolConfigInput): Promise<McpPool> {
  const pool = await createPool(config);
  t.teardown(() => pool.close());
  return pool;
}

/** One pool for the calling test file, made on first use and closed after its last test. Call at module level. */
export function sharedPool(config: PoolConfigInput): () => Promise<McpPool> {
  let pool: Promise<McpPool> | undefined;
  test.after.always(async () => {
    await (await pool?.catch(() => undefined))?.close();
  });
  return () => (pool ??= createPool(config));
}

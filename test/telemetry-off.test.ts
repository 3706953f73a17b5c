/**
 * Telemetry with `@opentelemetry/api` present but no SDK registered (this file's process registers no
 * tracer or meter provider): nothing goes to the server, unless the caller's context carries a span.
 */
import test from "ava";
import { context, propagation, trace, TraceFlags } from "@opentelemetry/api";
import { AsyncHooksContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { createPool, type McpPool } from "../src/index.js";
import { stdioServer } from "./helpers/fixtures.js";

let pool: McpPool;

test.before(async () => {
  pool = await createPool({ servers: { pipe: { ...stdioServer(), stderr: "ignore" } } });
});

test.after.always(() => pool?.close());

const metaOf = async (): Promise<Record<string, unknown>> => JSON.parse(((await pool.callTool("pipe__meta", {})).content[0] as { text: string }).text) as Record<string, unknown>;

test.serial("with no provider registered, a request carries no trace context", async (t) => {
  const meta = await metaOf();
  t.false("traceparent" in meta, JSON.stringify(meta));
  t.false("tracestate" in meta);
});

test.serial("with no tracer provider, a span the caller's context carries still reaches the server", async (t) => {
  context.setGlobalContextManager(new AsyncHooksContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  t.teardown(() => {
    context.disable();
    propagation.disable();
  });
  const caller = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: TraceFlags.SAMPLED };
  const meta = await context.with(trace.setSpanContext(context.active(), caller), metaOf);
  t.is(meta.traceparent, `00-${caller.traceId}-${caller.spanId}-01`);
  // Outside that context, nothing again.
  t.false("traceparent" in (await metaOf()));
});

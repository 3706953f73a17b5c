/**
 * JSON Schema validators for the worker, compiled with the SDK's ajv provider, with a bounded life.
 *
 * ajv keeps every schema it compiled for as long as its instance lives (keyed by the schema object, so
 * each tools/list, parsed anew, adds a copy), and serves a schema with an `$id` from its registry by
 * that id, whatever the schema now says. One instance for a worker's life therefore grew with every
 * list_changed until the worker's heap ran out, and validated a tool whose schema changed under the same
 * `$id` against the old one. Here an instance belongs to one listing and goes with it, and validators are
 * found by the schema's content.
 */
import type { JsonSchemaType, JsonSchemaValidator, jsonSchemaValidator } from "@modelcontextprotocol/client";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/client/validators/ajv";

/**
 * The compiled schemas of one tools/list. Compiles on demand (a tool nobody calls costs nothing), once per
 * distinct content (tools often share one schema). Throws what ajv throws for a schema it cannot compile.
 */
export class ListingValidators {
  /** Created on the first compile. */
  #ajv: AjvJsonSchemaValidator | undefined;
  #byContent = new Map<string, JsonSchemaValidator<unknown>>();
  /** The `$id`s registered in #ajv: another schema with one of them gets an instance of its own. */
  #ids = new Set<string>();

  compile(schema: JsonSchemaType): JsonSchemaValidator<unknown> {
    const key = JSON.stringify(schema);
    let validator = this.#byContent.get(key);
    if (validator) return validator;
    const id = typeof schema.$id === "string" ? schema.$id : undefined;
    let ajv: AjvJsonSchemaValidator;
    if (id !== undefined && this.#ids.has(id)) {
      // Two schemas under one $id in one listing: the shared instance would answer with the first.
      ajv = new AjvJsonSchemaValidator();
    } else {
      ajv = this.#ajv ??= new AjvJsonSchemaValidator();
      if (id !== undefined) this.#ids.add(id); // before compiling: ajv registers the id even if compiling fails
    }
    validator = ajv.getValidator(schema);
    this.#byContent.set(key, validator);
    return validator;
  }
}

/**
 * The validator the SDK's Client is given. On every tools/list the Client compiles each tool's
 * outputSchema, for its own callTool, which the pool does not use (it sends tools/call itself and
 * returns results as the server sent them): that cost heap on every list_changed, and one outputSchema
 * ajv cannot compile made the listing, and so the whole server, fail. Here a schema is compiled only
 * when something validates against it, on its own instance.
 */
export const deferredValidator: jsonSchemaValidator = {
  getValidator<T>(schema: JsonSchemaType): JsonSchemaValidator<T> {
    let compiled: JsonSchemaValidator<unknown> | undefined;
    return (input) => (compiled ??= new ListingValidators().compile(schema))(input) as ReturnType<JsonSchemaValidator<T>>;
  },
};

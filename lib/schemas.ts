/**
 * The JSON Schemas under `schemas/`, read and compiled one way for everyone who uses them: request
 * bodies per version (`v<N>/<name>.json`, the HTTP tier), channel payloads (`channels/<event>.json`,
 * the realtime tier) and representations (`responses/`, read by the OpenAPI documents). Below both
 * web tiers: a violation comes back as `{pointer, detail}` field errors, the same for a 422's
 * `errors` and a channel reply's `errors`. Compiled once at boot; a schema that is missing or does
 * not compile stops the boot, naming the file.
 *
 *     const bodies = compileRequestSchemas(["users.create"])
 *     bodies.validate(2, "users.create", body)        // → [] or [{pointer: "/email", detail: "must match format \"email\""}]
 *     const payloads = compileChannelSchemas()
 *     payloads.validate("message-new", { body: "" })  // → [{pointer: "/body", detail: "must NOT have fewer than 1 characters"}]
 *     readSchema(responseSchemaPath(1, "user"))       // schemas/responses/v1/user.json, parsed
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import type { FieldError } from "./errors.ts";
import { findNullCharacters } from "./null-characters.ts";
import { API_VERSIONS, type ApiVersion } from "./versions.ts";

const SCHEMA_DIR = new URL("../schemas/", import.meta.url);

export type Json = Record<string, unknown>;

/** Request body schemas by version and name (`schemas/v<N>/<name>.json`). */
export interface RequestSchemas {
  /** [] when valid. Throws for a name that was not compiled at boot (a programming error). */
  validate(version: ApiVersion, name: string, body: unknown): FieldError[];
}

/** Channel payload schemas by name (`schemas/channels/<name>.json`). */
export interface ChannelSchemas {
  /** [] when valid. Throws for a schema name that does not exist (a programming error). */
  validate(name: string, payload: unknown): FieldError[];
}

/** Compiles `schemas/v<N>/<name>.json` for each name and every supported version: a version lacking one stops the boot. */
export function compileRequestSchemas(names: Iterable<string>): RequestSchemas {
  const compile = compiler();
  const compiled = new Map<string, ValidateFunction>();
  for (const name of new Set(names)) {
    for (const version of API_VERSIONS) compiled.set(`v${version}/${name}`, compile(`v${version}/${name}`));
  }
  return {
    validate(version, name, body) {
      const check = compiled.get(`v${version}/${name}`);
      if (check === undefined) throw new Error(`schema ${name} was not compiled at boot`);
      return fieldErrors(check, body);
    },
  };
}

/** Compiles every schema under `schemas/channels/`, named by file (`message-new`). */
export function compileChannelSchemas(): ChannelSchemas {
  const compile = compiler();
  const dir = new URL("channels/", SCHEMA_DIR);
  const names = readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length));
  const compiled = new Map(names.map((name) => [name, compile(`channels/${name}`)] as const));
  return {
    validate(name, payload) {
      const check = compiled.get(name);
      if (check === undefined)
        throw new Error(`no channel schema "${name}" in ${dir.pathname} (have: ${[...compiled.keys()].join(", ")})`);
      return fieldErrors(check, payload);
    },
  };
}

/** The schema file `schemas/<path>.json`, parsed (`v2/users.create`, `responses/link`); throws naming the file. */
export function readSchema(path: string): Json {
  const file = new URL(`${path}.json`, SCHEMA_DIR);
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Json;
  } catch (error) {
    throw new Error(`schema ${path} cannot be loaded from ${file.pathname}: ${(error as Error).message}`);
  }
}

/** Where a representation's schema is: the version's own (`responses/v1/user`) when it has one, else the shared one (`responses/room`). */
export function responseSchemaPath(version: ApiVersion, name: string): string {
  const own = `responses/v${version}/${name}`;
  return existsSync(new URL(`${own}.json`, SCHEMA_DIR)) ? own : `responses/${name}`;
}

/** One ajv configuration for every validator: all errors at once, strict schemas, formats (`email`). */
function compiler(): (path: string) => ValidateFunction {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats.default(ajv);
  return (path) => {
    const schema = readSchema(path);
    try {
      return ajv.compile(schema);
    } catch (error) {
      throw new Error(`schema ${path} cannot be compiled: ${(error as Error).message}`);
    }
  };
}

function fieldErrors(check: ValidateFunction, value: unknown): FieldError[] {
  // U+0000 cannot be stored: refused as invalid like a schema violation, never a database error.
  const nul = findNullCharacters(value);
  if (nul.length > 0) return nul;
  return check(value) ? [] : (check.errors ?? []).map(toFieldError);
}

/** ajv reports paths as JSON Pointers already; a missing or unknown property points at itself. */
function toFieldError(error: ErrorObject): FieldError {
  const params = error.params as Record<string, unknown>;
  const property = params["missingProperty"] ?? params["additionalProperty"];
  const pointer =
    typeof property === "string" ? `${error.instancePath}/${escapePointer(property)}` : error.instancePath;
  const detail =
    error.keyword === "additionalProperties"
      ? "is not a known property"
      : error.keyword === "required"
        ? "is required"
        : (error.message ?? "is invalid");
  return { pointer, detail };
}

function escapePointer(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

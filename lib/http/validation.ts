/**
 * Request body schemas: JSON Schema files under `schemas/v<N>/<name>.json`, one per action per
 * version, compiled once at boot. A route that names a schema missing for any supported version
 * stops the boot.
 *
 *     const schemas = compileSchemas(["users.create"])
 *     schemas.validate(2, "users.create", body) // → [] or [{pointer: "/email", detail: "must match format \"email\""}]
 */
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import type { FieldError } from "../errors.ts";
import { findNullCharacters } from "../null-characters.ts";
import { API_VERSIONS, type ApiVersion } from "../versions.ts";

const SCHEMA_DIR = new URL("../../schemas/", import.meta.url);

export interface Schemas {
  validate(version: ApiVersion, name: string, body: unknown): FieldError[];
}

export function compileSchemas(names: Iterable<string>): Schemas {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats.default(ajv);
  const compiled = new Map<string, ValidateFunction>();
  for (const name of new Set(names)) {
    for (const version of API_VERSIONS) {
      const file = new URL(`v${version}/${name}.json`, SCHEMA_DIR);
      let schema: object;
      try {
        schema = JSON.parse(readFileSync(file, "utf8")) as object;
      } catch (error) {
        throw new Error(`schema ${name} for version ${version} cannot be loaded from ${file.pathname}: ${(error as Error).message}`);
      }
      compiled.set(`${version}:${name}`, ajv.compile(schema));
    }
  }
  return {
    validate(version, name, body) {
      const check = compiled.get(`${version}:${name}`);
      if (check === undefined) throw new Error(`schema ${name} was not compiled at boot`);
      const nul = findNullCharacters(body);
      if (nul.length > 0) return nul;
      return check(body) ? [] : (check.errors ?? []).map(toFieldError);
    },
  };
}

/** ajv reports paths as JSON Pointers already; a missing or unknown property points at itself. */
function toFieldError(error: ErrorObject): FieldError {
  const params = error.params as Record<string, unknown>;
  const property = params["missingProperty"] ?? params["additionalProperty"];
  const pointer = typeof property === "string" ? `${error.instancePath}/${escapePointer(property)}` : error.instancePath;
  const detail =
    error.keyword === "additionalProperties" ? "is not a known property" : error.keyword === "required" ? "is required" : (error.message ?? "is invalid");
  return { pointer, detail };
}

function escapePointer(token: string): string {
  return token.replaceAll("~", "~0").replaceAll("/", "~1");
}

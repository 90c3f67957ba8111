/**
 * Channel payload schemas: every JSON Schema under `schemas/channels/`, compiled once at boot.
 * Errors come back as `{pointer, detail}`, the same shape as REST validation problems.
 *
 *     const schemas = compileChannelSchemas()
 *     schemas.validate("message-new", { body: "" }) // → [{ pointer: "/body", detail: "must NOT have fewer than 1 characters" }]
 */
import { readdirSync, readFileSync } from "node:fs";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import type { FieldError } from "../../errors.ts";
import { findNullCharacters } from "../../null-characters.ts";

const SCHEMA_DIR = new URL("../../../schemas/channels/", import.meta.url);

export interface ChannelSchemas {
  /** [] when valid. Throws for a schema name that does not exist (a programming error). */
  validate(name: string, payload: unknown): FieldError[];
}

export function compileChannelSchemas(dir: URL = SCHEMA_DIR): ChannelSchemas {
  const ajv = new Ajv({ allErrors: true, strict: true });
  const compiled = new Map<string, ValidateFunction>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".json"))) {
    const url = new URL(file, dir);
    try {
      compiled.set(file.slice(0, -".json".length), ajv.compile(JSON.parse(readFileSync(url, "utf8")) as object));
    } catch (error) {
      throw new Error(`channel schema ${url.pathname} cannot be compiled: ${(error as Error).message}`);
    }
  }
  return {
    validate(name, payload) {
      const check = compiled.get(name);
      if (check === undefined) throw new Error(`no channel schema "${name}" in ${dir.pathname} (have: ${[...compiled.keys()].join(", ")})`);
      // U+0000 cannot be stored: refused as invalid like a schema violation, never a database error.
      const nul = findNullCharacters(payload);
      if (nul.length > 0) return nul;
      return check(payload) ? [] : (check.errors ?? []).map(toFieldError);
    },
  };
}

function toFieldError(error: ErrorObject): FieldError {
  const params = error.params as Record<string, unknown>;
  const property = params["missingProperty"] ?? params["additionalProperty"];
  const pointer = typeof property === "string" ? `${error.instancePath}/${property.replaceAll("~", "~0").replaceAll("/", "~1")}` : error.instancePath;
  const detail =
    error.keyword === "additionalProperties" ? "is not a known property" : error.keyword === "required" ? "is required" : (error.message ?? "is invalid");
  return { pointer, detail };
}

/**
 * U+0000 in input: PostgreSQL's text cannot store it (the insert fails with SQLSTATE 22021), so
 * both web tiers refuse it up front as a validation error with its pointer — 422 over HTTP,
 * `invalid` on a socket — instead of a 500 from the database.
 *
 *     findNullCharacters({ name: "a\u0000b", tags: ["ok"] }) // → [{ pointer: "/name", detail: "must not contain U+0000" }]
 */
import type { FieldError } from "./errors.ts";

const DETAIL = "must not contain U+0000 (the NUL character)";
/** Deeper than any schema of ours; a body nested past it is refused by the schemas anyway. */
const MAX_DEPTH = 64;

/** Every string value (and property name) holding U+0000, as JSON Pointers; [] when there is none. */
export function findNullCharacters(value: unknown): FieldError[] {
  // Nearly every input holds none: a walk that allocates nothing says so before any pointer is built.
  return holdsNullCharacter(value, 0) ? collect(value, "", 0) : [];
}

function holdsNullCharacter(value: unknown, depth: number): boolean {
  if (typeof value === "string") return value.includes("\u0000");
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return false;
  if (Array.isArray(value)) return value.some((child) => holdsNullCharacter(child, depth + 1));
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    if (key.includes("\u0000") || holdsNullCharacter((value as Record<string, unknown>)[key], depth + 1)) return true;
  }
  return false;
}

function collect(value: unknown, pointer: string, depth: number): FieldError[] {
  if (typeof value === "string") return value.includes("\u0000") ? [{ pointer, detail: DETAIL }] : [];
  if (value === null || typeof value !== "object" || depth > MAX_DEPTH) return [];
  const found: FieldError[] = [];
  const entries: Array<[string, unknown]> = Array.isArray(value)
    ? value.map((v, i) => [String(i), v])
    : Object.entries(value);
  for (const [key, child] of entries) {
    const at = `${pointer}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
    if (key.includes("\u0000")) found.push({ pointer: at, detail: `property name ${DETAIL}` });
    found.push(...collect(child, at, depth + 1));
  }
  return found;
}

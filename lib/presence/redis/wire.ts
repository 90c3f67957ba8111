/**
 * The presence diff as it travels on `rt:<prefix>:pd:<topic>`, and its check on arrival: every
 * field a receiving node uses is verified before the diff touches its state, so a malformed or
 * foreign message (another version, a stray PUBLISH) is dropped with a reason, never a crash.
 *
 *     parseDiff('{"v":1,"node":"n1:1:2:ab","kind":"change","joins":{},"leaves":{}}') // → the Wire
 *     parseDiff('{"v":1}')                                                          // → "malformed diff: …"
 */
import type { Meta, Presences } from "../state.ts";

export interface Wire {
  v: 1;
  node: string;
  kind: "change" | "reap";
  joins: Presences;
  leaves: Presences;
}

/** The diff, or the reason it was refused. */
export function parseDiff(text: string): Wire | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return "not JSON";
  }
  if (!isRecord(value)) return "malformed diff: expected an object";
  if (value["v"] !== 1) return `unknown diff version ${JSON.stringify(value["v"])}; expected 1`;
  const { node, kind, joins, leaves } = value;
  if (typeof node !== "string") return "malformed diff: node must be a string";
  if (kind !== "change" && kind !== "reap")
    return `malformed diff: kind must be "change" or "reap", got ${JSON.stringify(kind)}`;
  if (!isPresences(joins) || !isPresences(leaves))
    return "malformed diff: joins and leaves must be {key: {metas: [{phx_ref: string, …}]}}";
  return { v: 1, node, kind, joins, leaves };
}

function isPresences(value: unknown): value is Presences {
  if (!isRecord(value)) return false;
  return Object.values(value).every((p) => isRecord(p) && Array.isArray(p["metas"]) && p["metas"].every(isMeta));
}

function isMeta(value: unknown): value is Meta {
  return isRecord(value) && typeof value["phx_ref"] === "string";
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Cursor pagination parameters: `?limit=` (1–100, default 20) and an opaque `?cursor=` that
 * encodes where the previous page stopped and in which direction to go.
 */
import type { PageRequest } from "../db/keyset.ts";
import type { HttpContext } from "./context.ts";
import { HttpProblem } from "./problems.ts";

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

export interface PageParams extends PageRequest {
  /** The raw cursor the request carried, if any. */
  cursor: string | undefined;
}

interface CursorState {
  direction: "forward" | "backward";
  from: number;
}

export function encodeCursor(state: CursorState): string {
  return Buffer.from(JSON.stringify({ d: state.direction === "forward" ? "f" : "b", k: state.from })).toString(
    "base64url",
  );
}

function decodeCursor(cursor: string): CursorState | undefined {
  try {
    const value = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as { d?: unknown; k?: unknown };
    // Keys are `integer` ids: a cursor outside that range is not one we issued (and would be a database error).
    if (
      (value.d !== "f" && value.d !== "b") ||
      !Number.isInteger(value.k) ||
      (value.k as number) < 0 ||
      (value.k as number) > 2147483647
    )
      return undefined;
    return { direction: value.d === "f" ? "forward" : "backward", from: value.k as number };
  } catch {
    return undefined;
  }
}

export function pageParams(ctx: HttpContext): PageParams {
  const limitText = single(ctx, "limit");
  const cursor = single(ctx, "cursor");
  let limit = DEFAULT_LIMIT;
  if (limitText !== undefined) {
    limit = Number(limitText);
    if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_LIMIT) {
      throw invalid("limit", `must be an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitText)}`);
    }
  }
  if (cursor === undefined) return { direction: "forward", limit, cursor };
  const state = decodeCursor(cursor);
  if (state === undefined) throw invalid("cursor", "is not a cursor this API issued; follow the next/prev links");
  return { ...state, limit, cursor };
}

function single(ctx: HttpContext, name: string): string | undefined {
  const value = ctx.query[name];
  if (Array.isArray(value)) throw invalid(name, "may appear only once");
  return value;
}

function invalid(parameter: string, detail: string): HttpProblem {
  return HttpProblem.of("invalid_parameter", `query parameter ${parameter} ${detail}`, {
    errors: [{ parameter, detail }],
  });
}

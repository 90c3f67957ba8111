/** Path parameters: ids are positive 32-bit integers; anything else names no resource (404). */
import { NotFound } from "../errors.ts";
import type { HttpContext } from "./context.ts";

export function idParam(ctx: HttpContext, name: string, resource: string): number {
  const text = (ctx as HttpContext & { params?: Record<string, string> }).params?.[name] ?? "";
  const id = Number(text);
  if (!/^[1-9]\d{0,9}$/.test(text) || id > 2147483647) throw new NotFound(resource, text);
  return id;
}

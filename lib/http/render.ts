/**
 * Rendering: a representation for the negotiated version, the versioned Content-Type, and
 * HAL collections with RFC 8288 `Link` headers.
 *
 *     respond(ctx, 200, userView, user)
 *     respondCollection(ctx, { rel: "users", view: userView, page, path: "/users" })
 */
import type { PageResult } from "../db/keyset.ts";
import { API_VERSIONS, mediaType, type ApiVersion } from "../versions.ts";
import type { RenderContext, Renderers } from "../../representations/render-context.ts";
import { link } from "../../representations/render-context.ts";
import { type HttpContext, versionOf, basePathOf } from "./context.ts";
import { encodeCursor, type PageParams } from "./pagination.ts";

export function renderContext(ctx: HttpContext, viewerId: number | undefined = ctx.state.user?.id): RenderContext {
  return { version: versionOf(ctx), basePath: basePathOf(ctx), viewerId };
}

/**
 * Renders `item` in the negotiated version. `viewerId` defaults to the authenticated user; public
 * actions that create or reveal an account (sign-up, log-in) name the account they show.
 */
export function respond<T>(ctx: HttpContext, status: number, view: Renderers<T>, item: T, viewerId?: number): void {
  sendJson(ctx, status, view[versionOf(ctx)](item, renderContext(ctx, viewerId ?? ctx.state.user?.id)));
}

/** Each version's Content-Type, built once: Koa's `ctx.type` setter would look it up and normalise it per response. */
const CONTENT_TYPES = Object.fromEntries(
  API_VERSIONS.map((version) => [version, `${mediaType(version)}; charset=utf-8`]),
) as Record<ApiVersion, string>;

export function sendJson(ctx: HttpContext, status: number, body: Record<string, unknown>): void {
  ctx.status = status;
  ctx.res.setHeader("Content-Type", CONTENT_TYPES[versionOf(ctx)]);
  ctx.body = body; // Koa keeps a Content-Type that names json
}

export interface CollectionOptions<T> {
  /** The `_embedded` relation name, e.g. `users`. */
  rel: string;
  view: Renderers<T>;
  page: PageResult<T>;
  params: PageParams;
  /** The collection's path without prefix, e.g. `/rooms/3/messages`. */
  path: string;
  /** The key that cursors continue from. */
  key: (item: T) => number;
}

export function respondCollection<T>(ctx: HttpContext, options: CollectionOptions<T>): void {
  const rc = renderContext(ctx);
  const { rows, more } = options.page;
  const { direction, limit } = options.params;
  const first = rows[0];
  const last = rows[rows.length - 1];
  // Going forward, more rows means a next page and having come from a cursor means a prev page;
  // going backward the roles swap.
  const hasNext = direction === "forward" ? more : options.params.cursor !== undefined;
  const hasPrev = direction === "forward" ? options.params.cursor !== undefined : more;
  const pageLink = (cursor: string) => link(rc, `${options.path}?limit=${limit}&cursor=${cursor}`);
  const links: Record<string, ReturnType<typeof link>> = {
    self: link(rc, `${ctx.path}${ctx.querystring ? `?${ctx.querystring}` : ""}`),
  };
  if (hasNext && last !== undefined)
    links["next"] = pageLink(encodeCursor({ direction: "forward", from: options.key(last) }));
  if (hasPrev && first !== undefined)
    links["prev"] = pageLink(encodeCursor({ direction: "backward", from: options.key(first) }));
  for (const rel of ["next", "prev"] as const) {
    const target = links[rel];
    if (target !== undefined) ctx.append("Link", `<${target.href}>; rel="${rel}"; type="${target.type}"`);
  }
  sendJson(ctx, 200, {
    _links: links,
    _embedded: { [options.rel]: rows.map((row) => options.view[rc.version](row, rc)) },
  });
}

/**
 * What every renderer receives besides its data: the version being served, the URL prefix
 * the request used (`""`, `"/v1"` or `"/v2"`) so links keep it, and who is looking.
 */
import { mediaType, type ApiVersion } from "../lib/versions.ts";

export interface RenderContext {
  readonly version: ApiVersion;
  /** `""` for unprefixed requests, `/v1` or `/v2` when the URL pinned the version. */
  readonly basePath: string;
  /** The authenticated user, if any. */
  readonly viewerId?: number | undefined;
}

export interface Link {
  href: string;
  type: string;
  templated?: true;
}

export type Links = Record<string, Link>;

/** A link to one of our resources, in the version being served. */
export function link(ctx: RenderContext, path: string, options: { templated?: boolean } = {}): Link {
  const result: Link = { href: `${ctx.basePath}${path}`, type: mediaType(ctx.version) };
  if (options.templated === true) result.templated = true;
  return result;
}

/**
 * One renderer per supported version. Declaring a registry with `satisfies Renderers<T>` makes
 * a missing version a compile error.
 */
export type Renderers<T> = { readonly [V in ApiVersion]: (item: T, ctx: RenderContext) => Record<string, unknown> };

/** A JSON body's representation of a timestamp: ISO 8601, UTC. */
export function timestamp(date: Date): string {
  return date.toISOString();
}

/**
 * The API versions Hypercast serves and their media types. Everything version-specific
 * (schemas, representations, deprecation headers) is keyed by `ApiVersion`, so adding a
 * version here makes every registry that lacks it a compile error.
 */

export const API_VERSIONS = [2, 1] as const; // newest first: the order of preference on ties
export type ApiVersion = (typeof API_VERSIONS)[number];
export const DEFAULT_VERSION: ApiVersion = 2;
/** The newest version: the successor that deprecated versions point to. */
export const CURRENT_VERSION: ApiVersion = API_VERSIONS[0];
export const DEPRECATED_VERSIONS: ReadonlySet<ApiVersion> = new Set([1]);

/** `application/vnd.app.v2+json` */
export function mediaType(version: ApiVersion): string {
  return `application/vnd.app.v${version}+json`;
}

/** The parameter form, `application/vnd.app+json; version=2`, means the same as `mediaType(2)`. */
export function parameterMediaType(version: ApiVersion): string {
  return `application/vnd.app+json; version=${version}`;
}

export function isApiVersion(value: unknown): value is ApiVersion {
  return (API_VERSIONS as readonly unknown[]).includes(value);
}

/** Parses "1" / "2" (a URL prefix digit or a query parameter) into a version, or undefined. */
export function parseApiVersion(text: string | undefined | null): ApiVersion | undefined {
  if (text === undefined || text === null || !/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return isApiVersion(n) ? n : undefined;
}

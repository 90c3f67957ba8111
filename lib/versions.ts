/**
 * The API versions Hypercast serves, their media types and their declared history. Everything
 * version-specific (schemas, representations, request params, this changelog) is keyed by
 * `ApiVersion`, so adding a version here makes every registry that lacks it a compile error
 * (README "Adding a version" walks through it; tests/versions/adding-a-version.test.ts proves it).
 *
 * When a version stops being served is configuration, not code: its sunset date and brownout
 * windows (`V1_SUNSET`, `V1_BROWNOUTS`) join this declaration in the version policy
 * (lib/version-policy.ts), which is what the rest of the code asks about a version's status.
 */

export const API_VERSIONS = [2, 1] as const; // newest first: the order of preference on ties
export type ApiVersion = (typeof API_VERSIONS)[number];
/** What a caller with no pinned version (no bearer token) gets when it names no version. */
export const DEFAULT_VERSION: ApiVersion = 2;
/** The newest version: the successor that deprecated versions point to, and new accounts' pin when they name none. */
export const CURRENT_VERSION: ApiVersion = API_VERSIONS[0];

/** One entry of a version's changelog: what differs from the previous version, for one resource. */
export interface VersionChange {
  /** The resource (a path segment, e.g. `users`, `messages`) the change concerns. */
  readonly resource: string;
  readonly description: string;
}

export interface VersionDeclaration {
  /** When it was deprecated (RFC 9745 `Deprecation`); absent for a version still current. */
  readonly deprecatedAt?: Date;
  /** What changed since the previous version; the first version lists what it introduced. */
  readonly changes: readonly VersionChange[];
}

/**
 * The changelog, declared once: `GET /versions`, each OpenAPI document and the README's version
 * table are all rendered from it.
 */
export const VERSIONS = {
  1: {
    deprecatedAt: new Date("2026-01-01T00:00:00Z"),
    changes: [
      { resource: "users", description: "`favorite_sport`: one favourite sport (or `null`)." },
      { resource: "messages", description: "`user_id`: the author's id." },
    ],
  },
  2: {
    changes: [
      {
        resource: "users",
        description:
          "`favorite_sport` (one) became `favorite_sports` (a list); v1 clients editing `favorite_sport` keep the rest of the list.",
      },
      {
        resource: "users",
        description:
          "`api_version`: the account's pinned version, shown to its owner; `PATCH /users/{id}` `{api_version}` changes it.",
      },
      { resource: "messages", description: "`user_id` became `author: {id, name}`." },
    ],
  },
} as const satisfies Record<ApiVersion, VersionDeclaration>;

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

/**
 * Versioning at the edge: the URL prefix (`/v1`, `/v2`) and the `Accept` header decide the
 * version once, here; everything downstream reads `ctx.state.version`.
 */
import { CURRENT_VERSION, DEPRECATED_VERSIONS, mediaType, parseApiVersion, type ApiVersion } from "../versions.ts";
import { negotiateVersion as negotiate, supportedMediaTypes } from "./accept.ts";
import type { Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

const PREFIX = /^\/v(\d+)(?=\/|$)/;

/**
 * `/v1/users/3` is routed as `/users/3` with version 1 pinned; links then keep the prefix.
 * An unknown prefix (`/v3/...`) is left alone and ends as a 404.
 */
export function stripVersionPrefix(): Middleware {
  return async function stripVersionPrefixMiddleware(ctx, next) {
    ctx.state.basePath = "";
    const match = PREFIX.exec(ctx.path);
    const version = parseApiVersion(match?.[1]);
    if (match !== null && version !== undefined) {
      ctx.state.pinnedVersion = version;
      ctx.state.basePath = match[0];
      ctx.path = ctx.path.slice(match[0].length) || "/";
    }
    await next();
  };
}

export interface DeprecationOptions {
  /** When the deprecated versions were deprecated (RFC 9745 `Deprecation`). */
  deprecatedAt: Date;
  /** When they stop being served (RFC 8594 `Sunset`). */
  sunset: Date;
}

/** Picks the version (406 when nothing acceptable is left) and marks deprecated responses. */
export function negotiateVersion(options: DeprecationOptions): Middleware {
  const deprecation = `@${Math.floor(options.deprecatedAt.getTime() / 1000)}`;
  const sunset = options.sunset.toUTCString();
  const successorType = `type="${mediaType(CURRENT_VERSION)}"`;
  const negotiated = rememberNegotiations();
  return async function negotiateVersionMiddleware(ctx, next) {
    const version = negotiated(ctx.get("Accept") || undefined, ctx.state.pinnedVersion);
    if (version === undefined) {
      const pinned = ctx.state.pinnedVersion;
      const supported = pinned === undefined ? supportedMediaTypes() : [mediaType(pinned), "application/json"];
      throw HttpProblem.of(
        "not_acceptable",
        `none of the media types in Accept can be served${pinned === undefined ? "" : ` under /v${pinned}`}; expected one of: ${supported.join(", ")}`,
        { supported_media_types: supported },
      );
    }
    ctx.state.version = version;
    if (DEPRECATED_VERSIONS.has(version)) {
      ctx.set("Deprecation", deprecation);
      ctx.set("Sunset", sunset);
      ctx.append("Link", `<${successorPath(ctx.originalUrl, version)}>; rel="successor-version"; ${successorType}`);
    }
    await next();
  };
}

// Compiled once: deprecated versions' URL prefixes, as successorPath swaps them.
const VERSION_PREFIXES = new Map([...DEPRECATED_VERSIONS].map((v) => [v, new RegExp(`^/v${v}(?=/|$|\\?)`)] as const));

/** The same resource in the current version: swap the `/vN` prefix if the URL has one. */
function successorPath(originalUrl: string, version: ApiVersion): string {
  const prefix = VERSION_PREFIXES.get(version) ?? new RegExp(`^/v${version}(?=/|$|\\?)`);
  return originalUrl.replace(prefix, `/v${CURRENT_VERSION}`);
}

/** How many distinct (Accept, pinned version) answers a negotiator remembers before starting afresh. */
const REMEMBERED_NEGOTIATIONS = 512;
/** Longer Accept headers are negotiated each time rather than remembered. */
const REMEMBERED_ACCEPT_LENGTH = 512;

/**
 * `negotiate` (a pure function of the header and the pin) with its answers remembered: clients
 * send a handful of distinct Accept headers, and parsing one costs more than the rest of the
 * negotiation. Bounded: when full, the memory is cleared, so odd headers cost only a re-parse.
 */
function rememberNegotiations(): (accept: string | undefined, pinned: ApiVersion | undefined) => ApiVersion | undefined {
  const answers = new Map<ApiVersion | undefined, Map<string | undefined, ApiVersion | null>>();
  let size = 0;
  return (accept, pinned) => {
    if (accept !== undefined && accept.length > REMEMBERED_ACCEPT_LENGTH) return negotiate(accept, pinned);
    let forPin = answers.get(pinned);
    const known = forPin?.get(accept);
    if (known !== undefined) return known ?? undefined;
    const version = negotiate(accept, pinned);
    if (size >= REMEMBERED_NEGOTIATIONS) {
      answers.clear();
      size = 0;
      forPin = undefined;
    }
    if (forPin === undefined) answers.set(pinned, (forPin = new Map()));
    forPin.set(accept, version ?? null);
    size++;
    return version;
  };
}

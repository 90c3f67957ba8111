/**
 * Versioning at the edge: the URL prefix (`/v1`, `/v2`), the `Accept` header, the caller's
 * pinned version and the clock (sunsets, brownouts) decide the version once, here; everything
 * downstream reads `versionOf(ctx)`.
 */
import type { Clock } from "../clock.ts";
import {
  describeWithdrawal,
  withdrawnTimeline,
  type VersionPolicy,
  type Withdrawal,
  type WithdrawnState,
} from "../version-policy.ts";
import { API_VERSIONS, CURRENT_VERSION, mediaType, parseApiVersion, type ApiVersion } from "../versions.ts";
import { Invalid } from "../errors.ts";
import { negotiate, supportedMediaTypes, type Negotiation } from "./accept.ts";
import { type HttpContext, type Middleware, versionOf } from "./context.ts";
import { HttpProblem } from "./problems.ts";
import type { RequestStamp } from "./stamp.ts";

const PREFIX = /^\/v(\d+)(?=\/|$)/;

/**
 * `Vary: Accept, Authorization` on every response, errors and preflights included: the version
 * served depends on `Accept` and, through the caller's pinned version, on who asks. Outermost:
 * the header is set whole (later `ctx.vary` calls, CORS's `Origin`, append to it).
 */
export function varyByCaller(): RequestStamp {
  return function varyByCaller(ctx) {
    ctx.res.setHeader("Vary", "Accept, Authorization");
  };
}

/**
 * `/v1/users/3` is routed as `/users/3` with version 1 pinned; links then keep the prefix.
 * An unknown prefix (`/v3/...`) is left alone and ends as a 404.
 */
export function stripVersionPrefix(): Middleware {
  return function stripVersionPrefixMiddleware(ctx, next) {
    ctx.state.basePath = "";
    const match = PREFIX.exec(ctx.path);
    const version = parseApiVersion(match?.[1]);
    if (match !== null && version !== undefined) {
      ctx.state.pinnedVersion = version;
      ctx.state.basePath = match[0];
      ctx.path = ctx.path.slice(match[0].length) || "/";
    }
    return next();
  };
}

export interface NegotiationOptions {
  /** Which versions are deprecated and when they stop being offered (`config.versions`). */
  versions: VersionPolicy;
  /** What time it is, for sunsets and brownouts. */
  clock: Clock;
}

/**
 * Picks the version (406 when nothing acceptable is left, 410 when only a withdrawn version
 * could serve) and marks deprecated responses. Its inputs are the `Accept` header, the `/vN`
 * prefix, the caller's pinned version (so the bearer token is looked up before this runs:
 * `identifyCaller`) and the versions the clock says are withdrawn; `negotiate` (accept.ts)
 * decides, this middleware only turns its answer into headers or a problem.
 */
export function negotiateVersion(options: NegotiationOptions): Middleware {
  const { versions, clock } = options;
  const deprecationHeaders = new Map(
    versions.all.flatMap(({ version, deprecatedAt, sunset }) =>
      deprecatedAt === undefined
        ? []
        : [
            [
              version,
              { deprecation: `@${Math.floor(deprecatedAt.getTime() / 1000)}`, sunset: sunset?.toUTCString() },
            ] as const,
          ],
    ),
  );
  const successorType = `type="${mediaType(CURRENT_VERSION)}"`;
  const negotiated = rememberNegotiations();
  const withdrawnAt = withdrawnTimeline(versions);
  // Synchronous: a plain function, so negotiating costs no promise or frame of its own.
  return function negotiateVersionMiddleware(ctx, next) {
    const now = clock.now();
    const state = withdrawnAt(now);
    const withdrawn = state.withdrawn;
    ctx.state.withdrawn = withdrawn;
    const prefix = ctx.state.pinnedVersion;
    const pin = ctx.state.user?.apiVersion;
    const result = negotiated(ctx.req.headers.accept || undefined, prefix, pin, state);
    if (result.kind === "not_acceptable") {
      const supported =
        prefix === undefined ? supportedMediaTypes((v) => !withdrawn.has(v)) : [mediaType(prefix), "application/json"];
      throw HttpProblem.of(
        "not_acceptable",
        `none of the media types in Accept can be served${prefix === undefined ? "" : ` under /v${prefix}`}; expected one of: ${supported.join(", ")}`,
        { supported_media_types: supported },
      );
    }
    if (result.kind === "gone") {
      ctx.state.goneVersion = result.version;
      const link = `<${successorPath(ctx.originalUrl, result.version)}>; rel="successor-version"; ${successorType}`;
      throw versionGone(
        result.version,
        withdrawn.get(result.version)!,
        now,
        link,
        prefix === undefined && pin === result.version,
      );
    }
    const version = result.version;
    ctx.state.version = version;
    const deprecated = deprecationHeaders.get(version);
    if (deprecated !== undefined) {
      ctx.set("Deprecation", deprecated.deprecation);
      if (deprecated.sunset !== undefined) ctx.set("Sunset", deprecated.sunset);
      ctx.append("Link", `<${successorPath(ctx.originalUrl, version)}>; rel="successor-version"; ${successorType}`);
    }
    return next();
  };
}

/** The 410: why the version is withdrawn, what to ask for instead and, in a brownout, when to come back. */
function versionGone(version: ApiVersion, why: Withdrawal, now: Date, link: string, fromPin: boolean): HttpProblem {
  const instead = [`Accept: ${mediaType(CURRENT_VERSION)}`, `the /v${CURRENT_VERSION} prefix`];
  if (fromPin)
    instead.push(
      `or move your pinned version: PATCH /users/{id} {"api_version": ${CURRENT_VERSION}} (naming version ${CURRENT_VERSION})`,
    );
  const headers: Record<string, string> = { Link: link };
  if (why.reason === "brownout")
    headers["Retry-After"] = String(Math.max(1, Math.ceil((why.window.end.getTime() - now.getTime()) / 1000)));
  return HttpProblem.of(
    "version_gone",
    `${describeWithdrawal(version, why)}; ask for version ${CURRENT_VERSION} (${instead.join(", ")})`,
    { version, successor_version: CURRENT_VERSION },
    headers,
  );
}

/**
 * A pin may only move to a version offered now: one past its sunset (or inside a brownout) is a
 * 422 on `/api_version`, as any other rule violation.
 *
 *     refuseWithdrawnPin(ctx, changes.apiVersion)
 */
export function refuseWithdrawnPin(ctx: HttpContext, version: ApiVersion | undefined): void {
  const why = version === undefined ? undefined : ctx.state.withdrawn?.get(version);
  if (version === undefined || why === undefined) return;
  const detail = `${describeWithdrawal(version, why)}; pin a version that is offered`;
  throw new Invalid(`api_version ${version} cannot be pinned: ${detail}`, [{ pointer: "/api_version", detail }]);
}

// Compiled once: each version's URL prefix, as successorPath swaps them.
const VERSION_PREFIXES = new Map(API_VERSIONS.map((v) => [v, new RegExp(`^/v${v}(?=/|$|\\?)`)] as const));

/** The same resource in the current version: swap the `/vN` prefix if the URL has one. */
function successorPath(originalUrl: string, version: ApiVersion): string {
  return originalUrl.replace(VERSION_PREFIXES.get(version)!, `/v${CURRENT_VERSION}`);
}

/** How many distinct (Accept, prefix, pin, withdrawn) answers a negotiator remembers before starting afresh. */
const REMEMBERED_NEGOTIATIONS = 512;
/** Longer Accept headers are negotiated each time rather than remembered. */
const REMEMBERED_ACCEPT_LENGTH = 512;

type Remembered = (
  accept: string | undefined,
  prefix: ApiVersion | undefined,
  pin: ApiVersion | undefined,
  withdrawn: WithdrawnState,
) => Negotiation;

/**
 * `negotiate` (a pure function of its inputs) with its answers remembered: clients send a
 * handful of distinct Accept headers, and parsing one costs more than the rest of the
 * negotiation. Bounded: when full, the memory is cleared, so odd headers cost only a re-parse.
 */
function rememberNegotiations(): Remembered {
  const answers = new Map<string, Map<string | undefined, Negotiation>>();
  let size = 0;
  return (accept, prefix, pin, state) => {
    const withdrawn = state.versions;
    if (accept !== undefined && accept.length > REMEMBERED_ACCEPT_LENGTH)
      return negotiate({ accept, prefix, pin, withdrawn });
    // Every part of the key but the header is a version number or nothing: a handful of values.
    const key = `${prefix ?? ""}|${pin ?? ""}|${state.key}`;
    let forKey = answers.get(key);
    const known = forKey?.get(accept);
    if (known !== undefined) return known;
    const result = negotiate({ accept, prefix, pin, withdrawn });
    if (size >= REMEMBERED_NEGOTIATIONS) {
      answers.clear();
      size = 0;
      forKey = undefined;
    }
    if (forKey === undefined) answers.set(key, (forKey = new Map()));
    forKey.set(accept, result);
    size++;
    return result;
  };
}

/**
 * The typed per-request state our middleware fills in (Koa's default `ctx.state` is `any`).
 * Every field is set by some step on the way in, so every field is optional: code that needs one
 * reads it through its accessor below, which names the step that should have set it.
 *
 *     respond(ctx, 200, userView, user) // reads versionOf(ctx), basePathOf(ctx)
 */
import type { ParameterizedContext, Next } from "koa";
import type { User } from "../accounts/index.ts";
import type { Withdrawal } from "../version-policy.ts";
import type { ApiVersion } from "../versions.ts";

export interface HttpState {
  /** The request's id: the client's `X-Request-Id` when well-formed, else a fresh UUID (set by `assignRequestId`). */
  requestId?: string;
  /** The client's address as TRUST_PROXY derives it (set by `identifyClient`): the key of every per-address limit. */
  clientAddress?: string;
  /** The route pattern of endpoints served outside the router (`/health`, `/metrics`), for telemetry. */
  route?: string;
  /** The version being served (negotiated, or pinned by the URL). */
  version?: ApiVersion;
  /** The version a `/vN` prefix pinned, if any. */
  pinnedVersion?: ApiVersion;
  /** `""` or `/v1` / `/v2`: prepended to every link we render. */
  basePath?: string;
  /** The withdrawn version a 410 refused (set by `negotiateVersion`), for telemetry. */
  goneVersion?: ApiVersion;
  /** The versions not offered during this request, and why (set by `negotiateVersion`). */
  withdrawn?: ReadonlyMap<ApiVersion, Withdrawal>;
  /** Whether the request's credentials were looked up, and what they were (set by `identifyCaller`). */
  caller?: "none" | "invalid" | "user";
  /** The authenticated user (set by `identifyCaller`, behind `limitRequests`, `lookUpCaller` or `requireUser`). */
  user?: User;
  /** The session (bearer token row) the request authenticated with (set by `requireUser`). */
  sessionId?: number;
  /** The bearer token the request authenticated with. */
  token?: string;
  /** The request body, parsed and validated against the version's schema. */
  body?: Record<string, unknown>;
}

export type HttpContext = ParameterizedContext<HttpState>;
export type Middleware = (ctx: HttpContext, next: Next) => Promise<void>;

function missing(field: string, setBy: string): Error {
  return new Error(
    `ctx.state.${field} is read before ${setBy} set it: check the middleware order in app.ts or the route's chain steps`,
  );
}

/** The request's id (set by `assignRequestId`, first of all). */
export function requestIdOf(ctx: HttpContext): string {
  const id = ctx.state.requestId;
  if (id === undefined) throw missing("requestId", "assignRequestId");
  return id;
}

/** The client's address (set by `identifyClient`, first of all). */
export function clientAddressOf(ctx: HttpContext): string {
  const address = ctx.state.clientAddress;
  if (address === undefined) throw missing("clientAddress", "identifyClient");
  return address;
}

/** The version being served (set by `negotiateVersion`, before routing). */
export function versionOf(ctx: HttpContext): ApiVersion {
  const version = ctx.state.version;
  if (version === undefined) throw missing("version", "negotiateVersion");
  return version;
}

/** `""` or the `/vN` prefix, prepended to links (set by `stripVersionPrefix`, before routing). */
export function basePathOf(ctx: HttpContext): string {
  const basePath = ctx.state.basePath;
  if (basePath === undefined) throw missing("basePath", "stripVersionPrefix");
  return basePath;
}

/** The validated request body (set by `acceptBody`, a chain step of routes with a body schema). */
export function bodyOf(ctx: HttpContext): Record<string, unknown> {
  const body = ctx.state.body;
  if (body === undefined) throw missing("body", "acceptBody");
  return body;
}

/** The typed per-request state our middleware fills in (Koa's default `ctx.state` is `any`). */
import type { ParameterizedContext, Next } from "koa";
import type { User } from "../accounts/index.ts";
import type { Withdrawal } from "../version-policy.ts";
import type { ApiVersion } from "../versions.ts";

export interface HttpState {
  /** The request's id: the client's `X-Request-Id` when well-formed, else a fresh UUID (set by `assignRequestId`). */
  requestId: string;
  /** The client's address as TRUST_PROXY derives it (set by `identifyClient`): the key of every per-address limit. */
  clientAddress: string;
  /** The route pattern of endpoints served outside the router (`/health`, `/metrics`), for telemetry. */
  route?: string;
  /** The version being served (negotiated, or pinned by the URL). */
  version: ApiVersion;
  /** The version a `/vN` prefix pinned, if any. */
  pinnedVersion?: ApiVersion;
  /** `""` or `/v1` / `/v2`: prepended to every link we render. */
  basePath: string;
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
  body: Record<string, unknown>;
}

export type HttpContext = ParameterizedContext<HttpState>;
export type Middleware = (ctx: HttpContext, next: Next) => Promise<void>;

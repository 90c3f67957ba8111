/**
 * Rate limits over HTTP: API requests per bearer token, and failed logins per e-mail address and
 * per client address (brute force). Over a limit → 429 problem with `Retry-After` and the IETF
 * `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers-10):
 *
 *     RateLimit-Policy: "api";q=600;w=60
 *     RateLimit: "api";r=0;t=17
 *     Retry-After: 17
 *
 * Counters live wherever `createLimiterStore` puts them (memory today).
 *
 *     app.use(limitRequests(createLimiterStore(config), { name: "api", points: 600, windowSeconds: 60 }))
 */
import { hash } from "node:crypto";
import { RateLimiterRes } from "rate-limiter-flexible";
import { DomainError } from "../errors.ts";
import type { Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";
import type { LimiterStore, RatePolicy } from "./rate-limit-store.ts";

const BEARER = /^Bearer[ ]+(\S+)\s*$/i;

/**
 * Counts every request that carries a bearer token against that token (valid or not: counting
 * comes before the database lookup). Answers carry the policy and what is left of it.
 */
export function limitRequests(store: LimiterStore, policy: RatePolicy): Middleware {
  const limiter = store(policy);
  return async function limitRequestsMiddleware(ctx, next) {
    const token = BEARER.exec(ctx.get("Authorization"))?.[1];
    if (token === undefined) return next();
    // Counters are keyed by a digest: a shared store (Redis, later) never holds a live token.
    const key = hash("sha256", token, "base64url");
    let state: RateLimiterRes;
    try {
      state = await limiter.consume(key);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      throw tooManyRequests(policy, rejection, `more than ${policy.points} requests in ${policy.windowSeconds} s with this token`);
    }
    ctx.set(rateLimitHeaders(policy, state));
    await next();
  };
}

export interface LoginPolicies {
  /** Failed logins per e-mail address (an account under attack). */
  perEmail: RatePolicy;
  /** Failed logins per client address (one attacker trying many accounts). */
  perAddress: RatePolicy;
}

/**
 * Behind body validation on the login route: refuses a login whose e-mail or client address has
 * used up its failures, counts a failed login (an `unauthorized` outcome) against both, and
 * forgives the e-mail's failures when a login succeeds.
 */
export function limitLoginAttempts(store: LimiterStore, policies: LoginPolicies): Middleware {
  const byEmail = store(policies.perEmail);
  const byAddress = store(policies.perAddress);
  return async function limitLoginAttemptsMiddleware(ctx, next) {
    const email = String(ctx.state.body["email"] ?? "").toLowerCase();
    const address = ctx.ip;
    const [emailState, addressState] = await Promise.all([byEmail.get(email), byAddress.get(address)]);
    for (const [policy, state, whose] of [
      [policies.perEmail, emailState, "this e-mail address"],
      [policies.perAddress, addressState, "this client address"],
    ] as const) {
      if (state !== null && state.consumedPoints >= policy.points) {
        throw tooManyRequests(policy, state, `too many failed logins for ${whose}; retry later`);
      }
    }
    try {
      await next();
    } catch (error) {
      if (error instanceof DomainError && error.code === "unauthorized") {
        await Promise.all([byEmail.penalty(email), byAddress.penalty(address)]);
      }
      throw error;
    }
    await byEmail.delete(email);
  };
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The draft's structured fields: the policy (quota `q`, window `w`) and the state (remaining `r`, reset `t`). */
export function rateLimitHeaders(policy: RatePolicy, state: RateLimiterRes): Record<string, string> {
  const remaining = Math.max(0, policy.points - state.consumedPoints);
  return {
    "RateLimit-Policy": `"${policy.name}";q=${policy.points};w=${policy.windowSeconds}`,
    RateLimit: `"${policy.name}";r=${remaining};t=${seconds(state.msBeforeNext)}`,
  };
}

function tooManyRequests(policy: RatePolicy, state: RateLimiterRes, detail: string): HttpProblem {
  const headers = { ...rateLimitHeaders(policy, state), "Retry-After": String(seconds(state.msBeforeNext)) };
  return HttpProblem.of("rate_limited", detail, {}, headers);
}

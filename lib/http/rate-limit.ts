/**
 * Rate limits over HTTP. Every limit is consumed *before* the work it guards, atomically in the
 * store (memory, or Redis when clustered), so N requests sent at once never get more than the
 * limit through:
 *
 * - `limitRequests`: a request with a valid bearer token counts against its user (every token of
 *   the user shares one budget); any other request (no token, or an invalid one) against its
 *   client address (`clientAddressOf(ctx)`, see client-address.ts).
 * - `limitLoginAttempts`: a login takes one attempt from its e-mail address and one from its
 *   client address before the password is checked; a success gives both back (and clears the
 *   e-mail's failures), so only failures stay counted.
 * - `limitSignUps`: a sign-up takes one from its client address before the password is hashed.
 *
 * Over a limit → 429 problem with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit`
 * fields (draft-ietf-httpapi-ratelimit-headers-10):
 *
 *     RateLimit-Policy: "api";q=600;w=60
 *     RateLimit: "api";r=0;t=17
 *     Retry-After: 17
 *
 *     app.use(limitRequests(store, accounts, { perUser, perAddress }))
 */
import { RateLimiterRes } from "./rate-limiter-res.ts";
import type { Accounts } from "../accounts/index.ts";
import { DomainError } from "../errors.ts";
import { identifyCaller } from "./auth.ts";
import { type Middleware, bodyOf, clientAddressOf } from "./context.ts";
import { HttpProblem } from "./problems.ts";
import type { Limiter, LimiterStore, RatePolicy } from "./rate-limit-store.ts";

export interface RequestPolicies {
  /** Requests per authenticated user. */
  perUser: RatePolicy;
  /** Requests per client address without a valid bearer token. */
  perAddress: RatePolicy;
}

/**
 * Identifies the caller when the request carries a bearer token (so `requireUser` does not look
 * it up again) and counts the request against the user, or against the client address when there
 * is no valid token. Answers carry the policy and what is left of it.
 */
export function limitRequests(store: LimiterStore, accounts: Accounts, policies: RequestPolicies): Middleware {
  const byUser = store(policies.perUser);
  const byAddress = store(policies.perAddress);
  // Built once: the policy fields never change, and the 429 details only name the policy.
  const userPolicy = policyField(policies.perUser);
  const addressPolicy = policyField(policies.perAddress);
  const tooManyByUser = `more than ${policies.perUser.points} requests in ${policies.perUser.windowSeconds} s by this user`;
  const tooMany = (what: string) =>
    `more than ${policies.perAddress.points} ${what} in ${policies.perAddress.windowSeconds} s from this client address`;
  const tooManyWithout = tooMany("requests without a bearer token");
  const tooManyInvalid = tooMany("requests with an invalid bearer token");
  return async function limitRequestsMiddleware(ctx, next) {
    const caller = await identifyCaller(accounts, ctx);
    const user = ctx.state.user;
    const res = ctx.res;
    if (caller === "user" && user !== undefined) {
      const key = `user:${user.id}`;
      // In memory the count is synchronous: no promise per request.
      const state =
        byUser.consumeNow === undefined
          ? await take(byUser, policies.perUser, key, tooManyByUser)
          : checked(byUser.consumeNow(key), policies.perUser, tooManyByUser);
      res.setHeader("RateLimit-Policy", userPolicy);
      res.setHeader("RateLimit", stateField(policies.perUser, state));
    } else {
      const key = clientAddressOf(ctx);
      const detail = caller === "none" ? tooManyWithout : tooManyInvalid;
      const state =
        byAddress.consumeNow === undefined
          ? await take(byAddress, policies.perAddress, key, detail)
          : checked(byAddress.consumeNow(key), policies.perAddress, detail);
      res.setHeader("RateLimit-Policy", addressPolicy);
      res.setHeader("RateLimit", stateField(policies.perAddress, state));
    }
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
 * Behind body validation on the login route. Takes an attempt from the e-mail address and from the
 * client address before the action checks the password: when either is spent the login is refused
 * unevaluated. A failed login (an `unauthorized` outcome) keeps both; a success clears the e-mail's
 * failures and gives the address its attempt back; a login that was not evaluated (database down,
 * password queue full) gives both back.
 */
export function limitLoginAttempts(store: LimiterStore, policies: LoginPolicies): Middleware {
  const byEmail = store(policies.perEmail);
  const byAddress = store(policies.perAddress);
  return async function limitLoginAttemptsMiddleware(ctx, next) {
    const email = String(bodyOf(ctx)["email"] ?? "").toLowerCase();
    const address = clientAddressOf(ctx);
    const [emailTaken, addressTaken] = await Promise.allSettled([
      take(byEmail, policies.perEmail, email, "too many failed logins for this e-mail address; retry later"),
      take(byAddress, policies.perAddress, address, "too many failed logins from this client address; retry later"),
    ]);
    if (emailTaken.status === "rejected" || addressTaken.status === "rejected") {
      // Whichever was granted is given back: this login is not evaluated.
      if (emailTaken.status === "fulfilled") await giveBack(byEmail, email);
      if (addressTaken.status === "fulfilled") await giveBack(byAddress, address);
      throw emailTaken.status === "rejected" ? emailTaken.reason : (addressTaken as PromiseRejectedResult).reason;
    }
    try {
      await next();
    } catch (error) {
      if (!(error instanceof DomainError && error.code === "unauthorized")) {
        await Promise.all([giveBack(byEmail, email), giveBack(byAddress, address)]);
      }
      throw error;
    }
    await Promise.all([byEmail.delete(email).catch(() => false), giveBack(byAddress, address)]);
  };
}

/**
 * Behind body validation on the sign-up route: takes one sign-up from the client address before
 * the password is hashed. A sign-up that was not attempted (password queue full, database down)
 * gives it back; a taken e-mail address does not (it cost a hash).
 */
export function limitSignUps(store: LimiterStore, policy: RatePolicy): Middleware {
  const byAddress = store(policy);
  return async function limitSignUpsMiddleware(ctx, next) {
    const address = clientAddressOf(ctx);
    const state = await take(
      byAddress,
      policy,
      address,
      `more than ${policy.points} sign-ups in ${policy.windowSeconds} s from this client address`,
    );
    ctx.set(rateLimitHeaders(policy, state));
    try {
      await next();
    } catch (error) {
      if (error instanceof DomainError && (error.code === "rate_limited" || error.code === "unavailable"))
        await giveBack(byAddress, address);
      throw error;
    }
  };
}

/** Consumes one point, or throws the 429 problem saying `detail`. */
async function take(limiter: Limiter, policy: RatePolicy, key: string, detail: string): Promise<RateLimiterRes> {
  try {
    return await limiter.consume(key);
  } catch (rejection) {
    if (!(rejection instanceof RateLimiterRes)) throw rejection;
    throw tooManyRequests(policy, rejection, detail);
  }
}

/** A state counted synchronously, or the 429 problem saying `detail` when it is over the policy. */
function checked(state: RateLimiterRes, policy: RatePolicy, detail: string): RateLimiterRes {
  if (state.consumedPoints > policy.points) throw tooManyRequests(policy, state, detail);
  return state;
}

/** Returns a point taken for work that was not done; a store hiccup only costs the caller a point. */
async function giveBack(limiter: Limiter, key: string): Promise<void> {
  await limiter.reward(key, 1).catch(() => undefined);
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** The draft's structured fields: the policy (quota `q`, window `w`) and the state (remaining `r`, reset `t`). */
export function rateLimitHeaders(policy: RatePolicy, state: RateLimiterRes): Record<string, string> {
  return { "RateLimit-Policy": policyField(policy), RateLimit: stateField(policy, state) };
}

function policyField(policy: RatePolicy): string {
  return `"${policy.name}";q=${policy.points};w=${policy.windowSeconds}`;
}

function stateField(policy: RatePolicy, state: RateLimiterRes): string {
  return `"${policy.name}";r=${Math.max(0, policy.points - state.consumedPoints)};t=${seconds(state.msBeforeNext)}`;
}

function tooManyRequests(policy: RatePolicy, state: RateLimiterRes, detail: string): HttpProblem {
  const headers = { ...rateLimitHeaders(policy, state), "Retry-After": String(seconds(state.msBeforeNext)) };
  return HttpProblem.of("rate_limited", detail, {}, headers);
}

/**
 * Before anything is timed, the HTTP benchmark makes sure every target answers what we mean to
 * compare: 200 for the seeded user, the reference and the peer writing byte for byte the body
 * Hypercast's v2 writes, with the same response headers (save the rate-limit fields, which only
 * Hypercast has), and v1 a deprecated v1 representation.
 *
 *     await checkTargets({ reference, peer, v2, v1 }, userId)
 */
import type { Target } from "./load.ts";

/** Headers every server sends its own way (framing, clock) or that only Hypercast has (its limiter). */
const OWN_HEADERS = new Set([
  "date",
  "connection",
  "keep-alive",
  "content-length",
  "ratelimit",
  "ratelimit-policy",
  "transfer-encoding",
]);

interface Answer {
  status: number;
  body: string;
  headers: Headers;
}

async function get(target: Target): Promise<Answer> {
  const res = await fetch(target.url, { headers: target.headers });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

function headerNames(headers: Headers): string {
  return [...headers.keys()]
    .filter((name) => !OWN_HEADERS.has(name))
    .sort()
    .join(", ");
}

export async function checkTargets(
  targets: { reference: Target; peer: Target; v2: Target; v1: Target },
  userId: number,
): Promise<void> {
  const v2 = await get(targets.v2);
  const parsed = v2.status === 200 ? (JSON.parse(v2.body) as Record<string, unknown>) : {};
  if (
    parsed["id"] !== userId ||
    !Array.isArray(parsed["favorite_sports"]) ||
    v2.headers.get("content-type") !== "application/vnd.app.v2+json; charset=utf-8"
  ) {
    throw new Error(`Hypercast v2 answered ${v2.status} ${v2.body}; expected a v2 user ${userId}`);
  }
  for (const name of ["reference", "peer"] as const) {
    const answer = await get(targets[name]);
    if (answer.status !== 200 || answer.body !== v2.body) {
      throw new Error(`the ${name} answered ${answer.status} ${answer.body}; expected Hypercast's v2 body ${v2.body}`);
    }
    if (
      headerNames(answer.headers) !== headerNames(v2.headers) ||
      answer.headers.get("etag") !== v2.headers.get("etag")
    ) {
      throw new Error(
        `the ${name} sent headers [${headerNames(answer.headers)}] (ETag ${answer.headers.get("etag")}); Hypercast v2 sends [${headerNames(v2.headers)}] (ETag ${v2.headers.get("etag")})`,
      );
    }
  }
  const v1 = await get(targets.v1);
  const v1Body = v1.status === 200 ? (JSON.parse(v1.body) as Record<string, unknown>) : {};
  if (
    !("favorite_sport" in v1Body) ||
    v1.headers.get("deprecation") === null ||
    !(v1.headers.get("content-type") ?? "").startsWith("application/vnd.app.v1+json")
  ) {
    throw new Error(`Hypercast v1 answered ${v1.status} ${v1.body}; expected a deprecated v1 user`);
  }
}

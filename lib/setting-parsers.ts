/**
 * The row parsers of `SETTINGS` (lib/settings.ts): each turns a variable's checked text into its
 * configured value, or throws an Error whose message follows the variable's name ("must be …").
 *
 *     parseTrustProxy("2")                   // → { hops: 2 }
 *     parseTrustProxy("10.0.0.0/8, ::1")     // → { cidrs: ["10.0.0.0/8", "::1"] }
 *     parseCorsOrigins("https://a.example/") // throws: … (did you mean "https://a.example"?)
 */
import { isIP } from "node:net";
import { parseIntervals } from "./version-policy.ts";

/** Which reverse proxies may name the client in `X-Forwarded-For`: a number of hops, a CIDR list, or none (unset). */
export type TrustProxy = { readonly hops: number } | { readonly cidrs: readonly string[] } | undefined;

/** `2027-06-30` → midnight UTC of that day. */
export function parseSunset(day: string): Date {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) throw new Error("is not a date");
  return date;
}

/** Comma-separated ISO 8601 intervals (`2027-05-04T16:00:00Z/PT1H` or `start/end`); unset: none. */
export function parseBrownouts(text: string | undefined) {
  return Object.freeze(parseIntervals(text ?? ""));
}

/** 0 (the feed off) or at least 100 ms. */
export function parseDashboardInterval(ms: number): number {
  if (ms > 0 && ms < 100) throw new Error(`must be 0 (feed off) or at least 100 (got ${ms})`);
  return ms;
}

/** `2` → 2 hops; `10.0.0.0/8, ::1` → those proxies; anything else names the expected forms. */
export function parseTrustProxy(text: string | undefined): TrustProxy {
  if (text === undefined) return undefined;
  if (/^\d+$/.test(text.trim())) return Object.freeze({ hops: Number(text.trim()) });
  const cidrs = text
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  for (const cidr of cidrs) {
    const [address = "", prefix, extra] = cidr.split("/");
    const family = isIP(address);
    const bits = family === 6 ? 128 : 32;
    if (
      family === 0 ||
      extra !== undefined ||
      (prefix !== undefined && !(/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits))
    ) {
      throw new Error(
        `must be a number of proxy hops (e.g. 1) or a comma-separated list of proxy addresses or CIDR ranges (e.g. 10.0.0.0/8, 192.168.1.7) (got ${JSON.stringify(cidr)})`,
      );
    }
  }
  return Object.freeze({ cidrs: Object.freeze(cidrs) });
}

/** `https://app.example.com, http://localhost:5173` → the list; each must be a bare origin, or `*` alone. */
export function parseCorsOrigins(text: string | undefined): readonly string[] {
  const entries = (text ?? "")
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 1 && entries[0] === "*") return Object.freeze(["*"]);
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      origin = new URL(entry).origin;
    } catch {
      origin = undefined;
    }
    // Browsers send the serialized origin (scheme://host[:port], no path, no trailing slash); we compare exactly.
    if (origin === undefined || origin === "null" || origin !== entry) {
      throw new Error(
        `must be a comma-separated list of origins like https://app.example.com (scheme, host, optional port; no path), or * alone (got ${JSON.stringify(entry)}${origin === undefined || origin === "null" ? "" : `; did you mean ${JSON.stringify(origin)}?`})`,
      );
    }
  }
  return Object.freeze(entries);
}

/** `ops@example.com, Ada@Example.com` → the set of lower-cased addresses; each must look like an address. */
export function parseAdminEmails(text: string | undefined): ReadonlySet<string> {
  const entries = (text ?? "")
    .split(",")
    .map((entry) => entry.trim().toLowerCase())
    .filter((entry) => entry !== "");
  const bad = entries.find((entry) => !/^[^\s@,]+@[^\s@,]+$/.test(entry));
  if (bad !== undefined)
    throw new Error(
      `must be a comma-separated list of e-mail addresses like ops@example.com (got ${JSON.stringify(bad)})`,
    );
  return new Set(entries);
}

/**
 * Version negotiation, pure: which API version a request's `Accept` header, `/vN` URL prefix,
 * the caller's pinned version and the versions withdrawn right now (sunset or browned out)
 * select, and what a request body's `Content-Type` declares. RFC 9110 §12.5.1 matching
 * (q-values, wildcards, `q=0` exclusions, specificity) comes from `negotiator`.
 *
 *     negotiate({ accept: "application/vnd.app.v1+json, text/html;q=0.1" })   // → { kind: "ok", version: 1 }
 *     negotiate({ accept: "application/json" })                               // → { kind: "ok", version: 2 } (the default)
 *     negotiate({ accept: "application/json", pin: 1 })                      // → { kind: "ok", version: 1 } (names no version: the pin)
 *     negotiate({ accept: "application/vnd.app.v2+json", prefix: 1 })         // → { kind: "not_acceptable" } (406)
 *     negotiate({ accept: undefined, prefix: 1, withdrawn: new Set([1]) })    // → { kind: "gone", version: 1 } (410)
 */
import { parse as parseContentType } from "content-type";
import Negotiator from "negotiator";
import {
  API_VERSIONS,
  DEFAULT_VERSION,
  mediaType,
  parameterMediaType,
  parseApiVersion,
  type ApiVersion,
} from "../versions.ts";

const GENERIC_JSON = "application/json";
/** The vendor type without a `version` parameter: like generic JSON, it names no version. */
const BARE_VENDOR = "application/vnd.app+json";

// What we can produce. The types that name no version come first: on a tie between equally
// specific matches negotiator prefers the earlier offer, so `*/*` and `application/*` match a
// type naming no version (and get the pin or the default), never a vendor type by accident.
// Then newest version first, the vendor subtypes before the parameter form.
const OFFERS: ReadonlyArray<readonly [string, ApiVersion | "unnamed"]> = [
  [GENERIC_JSON, "unnamed"],
  [BARE_VENDOR, "unnamed"],
  ...API_VERSIONS.map((v) => [mediaType(v), v] as const),
  ...API_VERSIONS.map((v) => [parameterMediaType(v), v] as const),
];

export interface NegotiationRequest {
  /** The `Accept` header; undefined or blank: any type. */
  accept: string | undefined;
  /** The version a `/vN` URL prefix fixed: then only that version's types and those naming none qualify. */
  prefix?: ApiVersion | undefined;
  /** The authenticated caller's pinned version: what a request naming no version gets instead of the default. */
  pin?: ApiVersion | undefined;
  /** Versions not offered right now (past their sunset or inside a brownout). */
  withdrawn?: ReadonlySet<ApiVersion> | undefined;
}

export type Negotiation =
  | { kind: "ok"; version: ApiVersion }
  /** Nothing acceptable can be served (406). */
  | { kind: "not_acceptable" }
  /** Only a withdrawn version could have served the request (410). */
  | { kind: "gone"; version: ApiVersion };

/**
 * The one negotiation. A withdrawn version is negotiated as if it were not listed, except that
 * what only it could serve is `gone` rather than `not_acceptable`: its `/vN` prefix (whatever the
 * `Accept`), an `Accept` whose only acceptable types are its own, or a caller pinned to it whose
 * most preferred acceptable type names no version.
 */
export function negotiate(request: NegotiationRequest): Negotiation {
  const { prefix, pin } = request;
  const withdrawn = request.withdrawn ?? NONE;
  if (prefix !== undefined && withdrawn.has(prefix)) return { kind: "gone", version: prefix };
  const offers = prefix === undefined ? OFFERS : OFFERS.filter(([, v]) => v === prefix || v === "unnamed");
  const types = offers.map(([type]) => type);
  // An empty field is read like an absent one: any type.
  const header = request.accept === undefined || request.accept.trim() === "" ? undefined : request.accept;
  // We always answer with the vendor type, so a version whose vendor type (either form) the
  // client named with q=0 is never served, whichever range matched: `application/json,
  // application/vnd.app.v2+json;q=0` gets version 1, not the excluded default.
  const excluded = API_VERSIONS.filter((v) => namedWithQuality(header, v, "zero"));
  let gone: ApiVersion | undefined;
  // Set once the caller's withdrawn pin was the answer to a type naming no version: from then on
  // only a version the header names itself may still be served (a wildcard does not count).
  let pinGone = false;
  for (const type of new Negotiator({ headers: { accept: header } }).mediaTypes(types)) {
    const offered = offers[types.indexOf(type)]![1];
    if (offered !== "unnamed") {
      if (excluded.includes(offered) || (pinGone && !namedWithQuality(header, offered, "positive"))) continue;
      if (!withdrawn.has(offered)) return { kind: "ok", version: offered };
      gone ??= offered;
      continue;
    }
    if (pinGone) continue;
    const candidates = (
      prefix !== undefined ? [prefix] : [pin ?? DEFAULT_VERSION, DEFAULT_VERSION, ...API_VERSIONS]
    ).filter((v) => !excluded.includes(v));
    const first = candidates[0];
    // A pinned caller naming no version gets its pin or, when that is withdrawn, 410: never
    // silently another version.
    if (prefix === undefined && pin !== undefined && first === pin && withdrawn.has(pin)) {
      pinGone = true;
      gone = pin;
      continue;
    }
    const version = candidates.find((v) => !withdrawn.has(v));
    if (version !== undefined) return { kind: "ok", version };
    gone ??= first;
  }
  return gone === undefined ? { kind: "not_acceptable" } : { kind: "gone", version: gone };
}

const NONE: ReadonlySet<ApiVersion> = new Set();

/** Whether the header lists `v`'s vendor type (either form) with q=0 (`zero`) or with q>0 (`positive`). */
function namedWithQuality(header: string | undefined, v: ApiVersion, which: "zero" | "positive"): boolean {
  if (header === undefined) return false;
  return header.split(",").some((entry) => {
    let parsed: { type: string; parameters: Record<string, string> };
    try {
      parsed = parseContentType(entry.trim());
    } catch {
      return false;
    }
    const { type, parameters } = parsed;
    const q = parameters["q"];
    const zero = q !== undefined && parseFloat(q) === 0; // parseFloat, as negotiator reads q
    if (zero !== (which === "zero")) return false;
    return type === mediaType(v) || (type === BARE_VENDOR && parseApiVersion(parameters["version"]) === v);
  });
}

/** Every media type a client may name to get a version (those offered now, if told), for 406 bodies and documentation. */
export function supportedMediaTypes(offered: (version: ApiVersion) => boolean = () => true): string[] {
  // The bare vendor type is left out: it names no version, as application/json does.
  return OFFERS.filter(([type, v]) => (v === "unnamed" ? type !== BARE_VENDOR : offered(v))).map(([type]) => type);
}

export type BodyType =
  { kind: "json"; version: ApiVersion | undefined } | { kind: "unsupported"; mediaType: string } | { kind: "missing" };

/**
 * Classifies a request body's Content-Type: generic JSON (`version` undefined), one of our
 * vendor types (with the version it names), or anything else.
 */
export function classifyBodyType(contentType: string | undefined): BodyType {
  if (contentType === undefined || contentType.trim() === "") return { kind: "missing" };
  let type: string;
  let parameters: Record<string, string>;
  try {
    ({ type, parameters } = parseContentType(contentType));
  } catch {
    return { kind: "unsupported", mediaType: contentType };
  }
  const charset = parameters["charset"]?.toLowerCase();
  if (charset !== undefined && charset !== "utf-8") return { kind: "unsupported", mediaType: contentType };
  if (type === GENERIC_JSON) return { kind: "json", version: undefined };
  const vendor = /^application\/vnd\.app\.v(\d+)\+json$/.exec(type);
  if (vendor !== null) {
    const version = parseApiVersion(vendor[1]);
    return version === undefined ? { kind: "unsupported", mediaType: type } : { kind: "json", version };
  }
  if (type === "application/vnd.app+json") {
    // Without a version parameter the type names no version: like generic JSON, the negotiated one applies.
    if (parameters["version"] === undefined) return { kind: "json", version: undefined };
    const version = parseApiVersion(parameters["version"]);
    return version === undefined ? { kind: "unsupported", mediaType: contentType } : { kind: "json", version };
  }
  return { kind: "unsupported", mediaType: type };
}

/**
 * Version negotiation, pure: which API version a request's `Accept` header (and URL prefix)
 * selects, and what a request body's `Content-Type` declares. RFC 9110 §12.5.1 matching
 * (q-values, wildcards, `q=0` exclusions, specificity) comes from `negotiator`.
 *
 *     negotiateVersion("application/vnd.app.v1+json, text/html;q=0.1")  // → 1
 *     negotiateVersion("application/json")                           // → 2 (the default)
 *     negotiateVersion("application/vnd.app.v2+json", 1)             // → undefined (406)
 */
import { parse as parseContentType } from "content-type";
import Negotiator from "negotiator";
import { API_VERSIONS, DEFAULT_VERSION, mediaType, parameterMediaType, parseApiVersion, type ApiVersion } from "../versions.ts";

const GENERIC_JSON = "application/json";

// What we can produce, in order of our own preference on ties: newest version first, the
// vendor subtypes before the parameter form, generic JSON last.
const OFFERS: ReadonlyArray<readonly [string, ApiVersion | "default"]> = [
  ...API_VERSIONS.map((v) => [mediaType(v), v] as const),
  ...API_VERSIONS.map((v) => [parameterMediaType(v), v] as const),
  [GENERIC_JSON, "default"],
];

/**
 * The version to serve, or undefined when nothing acceptable is left (406). `pinned` is the
 * version a `/vN` URL prefix fixed: then only that version's types and generic JSON qualify.
 */
export function negotiateVersion(accept: string | undefined, pinned?: ApiVersion): ApiVersion | undefined {
  const offers = pinned === undefined ? OFFERS : OFFERS.filter(([, v]) => v === pinned || v === "default");
  const types = offers.map(([type]) => type);
  // An empty field is read like an absent one: any type.
  const header = accept === undefined || accept.trim() === "" ? undefined : accept;
  // We always answer with the vendor type, so a version whose vendor type (either form) the
  // client named with q=0 is never served, whichever range matched: `application/json,
  // application/vnd.app.v2+json;q=0` gets version 1, not the excluded default.
  const excluded = API_VERSIONS.filter((v) => namesWithZeroQuality(header, v));
  for (const type of new Negotiator({ headers: { accept: header } }).mediaTypes(types)) {
    const offered = offers[types.indexOf(type)]![1];
    const candidates = offered !== "default" ? [offered] : pinned !== undefined ? [pinned] : [DEFAULT_VERSION, ...API_VERSIONS];
    const version = candidates.find((v) => !excluded.includes(v));
    if (version !== undefined) return version;
  }
  return undefined;
}

/** Whether the header lists `v`'s vendor type (either form) with q=0. */
function namesWithZeroQuality(header: string | undefined, v: ApiVersion): boolean {
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
    if (q === undefined || parseFloat(q) !== 0) return false; // parseFloat, as negotiator reads q
    return type === mediaType(v) || (type === "application/vnd.app+json" && parseApiVersion(parameters["version"]) === v);
  });
}

/** Every media type a client may name to get a version, for 406 bodies and documentation. */
export function supportedMediaTypes(): string[] {
  return OFFERS.map(([type]) => type);
}

export type BodyType =
  | { kind: "json"; version: ApiVersion | undefined }
  | { kind: "unsupported"; mediaType: string }
  | { kind: "missing" };

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

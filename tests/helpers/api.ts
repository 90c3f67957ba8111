/**
 * Shared assertions for the route tests: the four ways a client can pick a version (v1/v2 by
 * `Accept`, v1/v2 by URL prefix), the headers every versioned answer carries, HAL links, the
 * RFC 8288 `Link` header and walking a paginated collection both ways.
 *
 *     for (const mode of MODES) {
 *       test(`GET /users/:id (${mode.label})`, async (t) => {
 *         const res = await call(app, mode, "GET", `/users/${id}`, { token })
 *         assertVersioned(t, res, mode, 200, `/users/${id}`)
 *       })
 *     }
 */
import type { ExecutionContext } from "ava";
import { mediaType, type ApiVersion } from "../../lib/versions.ts";
import type { RequestOptions, TestResponse, TestServer } from "./http.ts";

export interface Mode {
  version: ApiVersion;
  /** `""` when the version comes from `Accept`, else `/v1` or `/v2`. */
  prefix: string;
  label: string;
}

/** Every way to ask for a version: by `Accept` (no prefix) and by URL prefix (no `Accept`). */
export const MODES: readonly Mode[] = [
  { version: 1, prefix: "", label: "v1 by Accept" },
  { version: 2, prefix: "", label: "v2 by Accept" },
  { version: 1, prefix: "/v1", label: "v1 by /v1 prefix" },
  { version: 2, prefix: "/v2", label: "v2 by /v2 prefix" },
];

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A request in the given mode: the prefix goes on the path, or the vendor type into `Accept`. */
export function call(
  app: TestServer,
  mode: Mode,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<TestResponse> {
  const accept = mode.prefix === "" ? mediaType(mode.version) : options.accept;
  return app.request(method, `${mode.prefix}${path}`, { ...options, ...(accept === undefined ? {} : { accept }) });
}

export interface LinkValue {
  href: string;
  rel: string;
  type?: string;
}

/** Parses an RFC 8288 `Link` header (as fetch joins several: comma-separated). */
export function parseLinkHeader(header: string | null): LinkValue[] {
  if (header === null || header === "") return [];
  const result: LinkValue[] = [];
  for (const part of header.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (match === null) throw new Error(`unparseable Link header part: ${part}`);
    const params = new Map<string, string>();
    for (const param of match[2]!.split(";").slice(1)) {
      const [name, value = ""] = param.split("=");
      params.set(name!.trim().toLowerCase(), value.trim().replace(/^"|"$/g, ""));
    }
    const link: LinkValue = { href: match[1]!, rel: params.get("rel") ?? "" };
    const type = params.get("type");
    if (type !== undefined) link.type = type;
    result.push(link);
  }
  return result;
}

/**
 * Status, `Content-Type`, `Vary: Accept`, and for v1 the deprecation headers with a
 * successor-version link to `path` (the unprefixed request path, query included) in v2.
 */
export function assertVersioned(
  t: ExecutionContext,
  res: TestResponse,
  mode: Mode,
  status: number,
  path: string,
): void {
  t.is(res.status, status, res.text);
  if (status !== 204) t.is(res.headers.get("content-type"), `${mediaType(mode.version)}; charset=utf-8`);
  t.true(
    (res.headers.get("vary") ?? "").split(/\s*,\s*/).some((v) => v.toLowerCase() === "accept"),
    "Vary: Accept",
  );
  const successors = parseLinkHeader(res.headers.get("link")).filter((l) => l.rel === "successor-version");
  if (mode.version === 1) {
    t.regex(res.headers.get("deprecation") ?? "", /^@\d+$/);
    t.false(Number.isNaN(Date.parse(res.headers.get("sunset") ?? "")), "Sunset is an HTTP date");
    t.regex(res.headers.get("sunset") ?? "", /GMT$/);
    const successor = mode.prefix === "" ? path : `/v2${path}`;
    t.deepEqual(successors, [{ href: successor, rel: "successor-version", type: mediaType(2) }]);
  } else {
    t.is(res.headers.get("deprecation"), null);
    t.is(res.headers.get("sunset"), null);
    t.deepEqual(successors, []);
  }
}

/** A problem+json answer with `Vary: Accept`. */
export function assertProblem(t: ExecutionContext, res: TestResponse, status: number): void {
  t.is(res.status, status, res.text);
  t.regex(res.headers.get("content-type") ?? "", /^application\/problem\+json(;|$)/);
  t.is(res.body.status, status);
  t.is(typeof res.body.type, "string");
  t.is(typeof res.body.title, "string");
  t.regex(res.headers.get("vary") ?? "", /accept/i);
}

/** A 401 with a Bearer challenge. */
export function assertUnauthorized(t: ExecutionContext, res: TestResponse): void {
  assertProblem(t, res, 401);
  t.regex(res.headers.get("www-authenticate") ?? "", /^Bearer\b/);
}

/**
 * Every link in a `_links` object (recursively through `_embedded`) is `{href, type[, templated]}`
 * with the mode's media type, and every path href carries the mode's prefix.
 */
export function assertLinks(t: ExecutionContext, resource: Record<string, unknown>, mode: Mode): void {
  const links = resource["_links"] as Record<string, { href: string; type: string; templated?: boolean }> | undefined;
  t.truthy(links, "a resource has _links");
  t.truthy(links?.["self"] ?? links?.["user"], "a resource links to itself (credentials link to their user)");
  for (const [rel, link] of Object.entries(links ?? {})) {
    t.deepEqual(
      Object.keys(link)
        .filter((k) => k !== "templated")
        .sort(),
      ["href", "type"],
      `link ${rel}`,
    );
    t.is(link.type, mediaType(mode.version), `link ${rel} type`);
    if (link.href.startsWith("/")) {
      if (mode.prefix === "") t.notRegex(link.href, /^\/v\d+\//, `link ${rel} has no prefix`);
      else t.true(link.href.startsWith(`${mode.prefix}/`), `link ${rel} keeps ${mode.prefix}: ${link.href}`);
    }
  }
  const embedded = resource["_embedded"] as Record<string, Record<string, unknown>[]> | undefined;
  for (const items of Object.values(embedded ?? {})) for (const item of items) assertLinks(t, item, mode);
}

/** Strips the mode's prefix from an href so it can be requested again through `call`. */
export function unprefixed(href: string, mode: Mode): string {
  return mode.prefix !== "" && href.startsWith(mode.prefix) ? href.slice(mode.prefix.length) : href;
}

export interface Page {
  res: TestResponse;
  items: Record<string, unknown>[];
}

/**
 * Fetches a collection page and checks the collection shape: `_links.self`, `_embedded[rel]`,
 * and a `Link` header with exactly the body's next/prev.
 */
export async function fetchPage(
  t: ExecutionContext,
  app: TestServer,
  mode: Mode,
  path: string,
  rel: string,
  token: string,
): Promise<Page> {
  const res = await call(app, mode, "GET", path, { token });
  assertVersioned(t, res, mode, 200, path);
  t.deepEqual(Object.keys(res.body).sort(), ["_embedded", "_links"]);
  t.deepEqual(Object.keys(res.body._embedded), [rel]);
  t.is(res.body._links.self.href, `${mode.prefix}${path}`);
  assertLinks(t, res.body, mode);
  const header = parseLinkHeader(res.headers.get("link")).filter((l) => l.rel !== "successor-version");
  const fromBody = (["next", "prev"] as const).flatMap((r) => {
    const link = res.body._links[r] as { href: string; type: string } | undefined;
    return link === undefined ? [] : [{ href: link.href, rel: r, type: link.type }];
  });
  t.deepEqual(header, fromBody, "the Link header carries the same next/prev as _links");
  return { res, items: res.body._embedded[rel] };
}

/**
 * Walks a collection from `start` along `next` to the end, then back along `prev` to the start;
 * returns the pages seen going forward (ids per page). Asserts the walk back sees the same pages.
 */
export async function walkBothWays(
  t: ExecutionContext,
  app: TestServer,
  mode: Mode,
  start: string,
  rel: string,
  token: string,
  id: (item: Record<string, unknown>) => unknown = (item) => item["id"],
): Promise<unknown[][]> {
  const forward: unknown[][] = [];
  let page = await fetchPage(t, app, mode, start, rel, token);
  t.is(page.res.body._links.prev, undefined, "the first page has no prev");
  forward.push(page.items.map(id));
  while (page.res.body._links.next !== undefined) {
    t.true(forward.length < 50, "the walk ends");
    page = await fetchPage(t, app, mode, unprefixed(page.res.body._links.next.href, mode), rel, token);
    t.not(page.res.body._links.prev, undefined, "a later page has a prev");
    forward.push(page.items.map(id));
  }
  const backward: unknown[][] = [page.items.map(id)];
  while (page.res.body._links.prev !== undefined) {
    t.true(backward.length < 50, "the walk back ends");
    page = await fetchPage(t, app, mode, unprefixed(page.res.body._links.prev.href, mode), rel, token);
    t.not(page.res.body._links.next, undefined, "an earlier page has a next");
    backward.unshift(page.items.map(id));
  }
  t.deepEqual(backward, forward, "walking back along prev sees the same pages");
  return forward;
}

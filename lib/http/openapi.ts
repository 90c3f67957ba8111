/**
 * OpenAPI 3.1 documents, one per version, generated at boot from the two things that already
 * describe the API: the route table (methods, paths, auth, body schema, what success returns,
 * particular problems) and the JSON Schemas under `schemas/` — request bodies from
 * `schemas/v<N>/<name>.json`, representations from `schemas/responses/`. Nothing is written twice:
 * the same response schemas check real responses in the tests, so the documents stay honest.
 *
 * A representation named `user` is `schemas/responses/v<N>/user.json` when it differs by version,
 * else `schemas/responses/user.json`; inside these files `{"$ref": "link.json"}` means "the `link`
 * representation of the same version" and becomes `#/components/schemas/Link`.
 *
 * Each document carries its version's changelog entry (lib/versions.ts) in `info.description`
 * and as `info.x-changes`, and a deprecated version's document its sunset and brownouts
 * (`info.x-sunset`, `info.x-brownouts`); once the sunset has passed it says the version is gone.
 *
 *     const doc = buildOpenApi(routes(deps, options), { version: 2, versions: config.versions })
 *     doc.paths["/users/{id}"].get.responses["200"].content["application/vnd.app.v2+json"].schema
 *     // → { $ref: "#/components/schemas/User" }
 */
import { readSchema, responseSchemaPath } from "../schemas.ts";
import type { VersionPolicy } from "../version-policy.ts";
import { API_VERSIONS, CURRENT_VERSION, mediaType, type ApiVersion } from "../versions.ts";
import { DEFAULT_LIMIT, MAX_LIMIT } from "./pagination.ts";
import { PROBLEMS, type ProblemKind } from "./problems.ts";
import { IDEMPOTENCY_PROBLEMS } from "./idempotency.ts";
import type { Route } from "./routes.ts";

const PROBLEM_JSON = "application/problem+json";

type Json = Record<string, unknown>;

export interface OpenApiOptions {
  version: ApiVersion;
  /** Each version's status, deprecation, sunset, brownouts and changes (`config.versions`). */
  versions: VersionPolicy;
  /** The version's sunset has passed: the document says it is no longer served. */
  sunsetReached?: boolean;
}

export function buildOpenApi(table: readonly Route[], options: OpenApiOptions): Json {
  const { version } = options;
  const schemas = new SchemaCollector(version);
  const declared = options.versions.of(version);
  const deprecated = declared.status === "deprecated";
  const sunset = declared.sunset?.toISOString().slice(0, 10);
  const brownouts = declared.brownouts.map((w) => w.label);
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of table) {
    const path = route.path.replace(/:(\w+)/g, "{$1}");
    (paths[path] ??= {})[route.method] = operation(route, version, deprecated, schemas);
  }
  const vendor = mediaType(version);
  return {
    openapi: "3.1.0",
    info: {
      title: `Hypercast API, version ${version}`,
      version: String(version),
      description: [
        `Version ${version} of the Hypercast API: responses are \`${vendor}\`; ask for it with \`Accept: ${vendor}\` or with the \`/v${version}\` URL prefix.`,
        options.sunsetReached === true
          ? `**Sunset** on ${sunset}: this version is no longer served; every request for it gets 410 \`/problems/version-gone\`. Use version ${CURRENT_VERSION} (\`/openapi/v${CURRENT_VERSION}.json\`).`
          : deprecated
            ? `**Deprecated** since ${declared.deprecatedAt?.toISOString().slice(0, 10)}; served until ${sunset ?? "further notice"}${brownouts.length > 0 ? `, except during the brownouts ${brownouts.join(", ")} (410, as after the sunset)` : ""}. Move to version ${CURRENT_VERSION} (\`/openapi/v${CURRENT_VERSION}.json\`).`
            : `The current version. Supported versions: ${API_VERSIONS.join(", ")} (see \`GET /versions\`).`,
        `Changes in version ${version}:\n\n${declared.changes.map((c) => `- **${c.resource}**: ${c.description}`).join("\n")}`,
        "Errors are RFC 9457 problems (`application/problem+json`). GET answers carry a strong `ETag`; `If-None-Match` gets 304.",
      ].join("\n\n"),
      "x-changes": declared.changes.map((c) => ({ resource: c.resource, description: c.description })),
      ...(deprecated ? { "x-sunset": declared.sunset?.toISOString() ?? null, "x-brownouts": brownouts, "x-sunset-reached": options.sunsetReached === true } : {}),
    },
    servers: [
      { url: `/v${version}`, description: "the URL prefix pins the version" },
      { url: "/", description: `unprefixed: send Accept: ${vendor}` },
    ],
    tags: [...new Set(table.map((r) => tagOf(r)))].map((name) => ({ name })),
    paths,
    components: {
      schemas: schemas.components,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "The opaque token from POST /sessions: `Authorization: Bearer <token>`." },
      },
      headers: HEADERS,
    },
  };
}

function operation(route: Route, version: ApiVersion, deprecated: boolean, schemas: SchemaCollector): Json {
  const vendor = mediaType(version);
  const parameters: Json[] = [...route.path.matchAll(/:(\w+)/g)].map(([, name]) => ({
    name,
    in: "path",
    required: true,
    schema: { type: "integer", minimum: 1, maximum: 2147483647 },
  }));
  if (route.returns.collection !== undefined) parameters.push(...PAGINATION);
  if (route.method === "get") parameters.push(IF_NONE_MATCH);
  const idempotent = route.method === "post" && route.credentials !== true;
  if (idempotent) parameters.push(IDEMPOTENCY_KEY);

  const successHeaders: Json = {};
  if (route.method === "get") successHeaders["ETag"] = ref("headers", "ETag");
  if (route.returns.collection !== undefined) successHeaders["Link"] = ref("headers", "Link");
  if (route.returns.status.includes(201) && route.method === "post" && route.returns.view !== "credentials") successHeaders["Location"] = ref("headers", "Location");
  if (idempotent) successHeaders["Idempotent-Replayed"] = ref("headers", "Idempotent-Replayed");
  if (route.auth) Object.assign(successHeaders, { "RateLimit-Policy": ref("headers", "RateLimit-Policy"), RateLimit: ref("headers", "RateLimit") });
  if (deprecated) Object.assign(successHeaders, { Deprecation: ref("headers", "Deprecation"), Sunset: ref("headers", "Sunset") });

  const responses: Record<string, Json> = {};
  const body = route.returns.view === undefined ? undefined : schemas.response(route.returns.view, route.returns.collection);
  for (const status of route.returns.status) {
    responses[String(status)] = {
      description: describeSuccess(route, status),
      headers: successHeaders,
      ...(body === undefined ? {} : { content: { [vendor]: { schema: body } } }),
    };
  }
  if (route.method === "get") {
    responses["304"] = { description: "Not Modified: the representation still matches `If-None-Match`", headers: { ETag: ref("headers", "ETag") } };
  }
  for (const [status, titles] of problemsOf(route, idempotent, deprecated)) {
    const headers: Json = {};
    if (status === 401) headers["WWW-Authenticate"] = ref("headers", "WWW-Authenticate");
    if (status === 429) Object.assign(headers, { "Retry-After": ref("headers", "Retry-After"), "RateLimit-Policy": ref("headers", "RateLimit-Policy"), RateLimit: ref("headers", "RateLimit") });
    if (status === 503 || status === 410) headers["Retry-After"] = ref("headers", "Retry-After");
    if (status === 410) headers["Link"] = ref("headers", "Link");
    if (status === 405) headers["Allow"] = ref("headers", "Allow");
    responses[String(status)] = {
      description: titles.join("; "),
      ...(Object.keys(headers).length > 0 ? { headers } : {}),
      content: { [PROBLEM_JSON]: { schema: schemas.named("problem") } },
    };
  }
  responses["default"] = { description: "Any other problem", content: { [PROBLEM_JSON]: { schema: schemas.named("problem") } } };

  return {
    operationId: route.name,
    tags: [tagOf(route)],
    ...(deprecated ? { deprecated: true } : {}),
    ...(route.auth ? { security: [{ bearer: [] }] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            content: { [vendor]: { schema: schemas.request(route.body) }, "application/json": { schema: schemas.request(route.body) } },
          },
        }),
    responses,
  };
}

function tagOf(route: Route): string {
  return route.name.split(".")[0]!;
}

function describeSuccess(route: Route, status: number): string {
  if (status === 204) return "No Content";
  if (route.name === "members.create") return status === 201 ? "Created: the user is now a member" : "OK: the user already was a member";
  return status === 201 ? "Created" : "OK";
}

/** The problems a route can answer, by status: those of its kind (auth, body, ids, pages, keys) and its own. */
function problemsOf(route: Route, idempotent: boolean, deprecated: boolean): Map<number, string[]> {
  // Every request is rate limited: per user with a token, per client address without one.
  const kinds = new Set<ProblemKind>(["not_acceptable", "unavailable", "rate_limited"]);
  // A deprecated version is withdrawn during brownouts and after its sunset.
  if (deprecated) kinds.add("version_gone");
  const extra: { status: number; title: string }[] = [];
  if (route.auth) kinds.add("unauthorized");
  if (route.body !== undefined) kinds.add("malformed_json").add("payload_too_large").add("unsupported_media_type").add("validation_failed");
  if (route.path.includes(":")) kinds.add("not_found");
  if (route.returns.collection !== undefined) kinds.add("invalid_parameter");
  if (idempotent) {
    kinds.add("bad_request");
    extra.push(IDEMPOTENCY_PROBLEMS.inFlight, IDEMPOTENCY_PROBLEMS.reused);
  }
  for (const kind of route.problems ?? []) kinds.add(kind);
  const byStatus = new Map<number, string[]>();
  for (const { status, title } of [...[...kinds].map((k) => PROBLEMS[k]), ...extra].sort((a, b) => a.status - b.status)) {
    const titles = byStatus.get(status) ?? [];
    if (!titles.includes(title)) titles.push(title);
    byStatus.set(status, titles);
  }
  return byStatus;
}

function ref(section: string, name: string): Json {
  return { $ref: `#/components/${section}/${name}` };
}

/** Loads schema files on demand into `components.schemas`, rewriting their file references. */
class SchemaCollector {
  readonly components: Record<string, Json> = {};

  constructor(private readonly version: ApiVersion) {}

  /** A representation (`user`) or, with `collection`, a page of them under that relation. */
  response(view: string, collection?: string): Json {
    const item = this.named(view);
    if (collection === undefined) return item;
    const name = `${pascal(collection)}Page`;
    this.components[name] ??= {
      title: `A page of ${collection}, with next/prev links when there is more`,
      type: "object",
      required: ["_links", "_embedded"],
      additionalProperties: false,
      properties: {
        _links: {
          type: "object",
          required: ["self"],
          additionalProperties: false,
          properties: { self: this.named("link"), next: this.named("link"), prev: this.named("link") },
        },
        _embedded: { type: "object", required: [collection], additionalProperties: false, properties: { [collection]: { type: "array", items: item } } },
      },
    };
    return ref("schemas", name);
  }

  /** A request body schema, `schemas/v<N>/<name>.json`, as `<Name>Request`. */
  request(name: string): Json {
    const component = `${pascal(name)}Request`;
    if (this.components[component] === undefined) {
      const { $schema: _dialect, dependencies, ...schema } = readSchema(`v${this.version}/${name}`);
      // Draft-07's array form of `dependencies` is `dependentRequired` in OpenAPI 3.1's dialect (2020-12).
      this.components[component] = dependencies === undefined ? schema : { ...schema, dependentRequired: dependencies };
    }
    return ref("schemas", component);
  }

  /** A response schema by name, preferring the version's own file. */
  named(name: string): Json {
    const component = pascal(name);
    if (this.components[component] === undefined) {
      this.components[component] = {}; // reserved first: schemas may refer to each other
      this.components[component] = this.rewrite(readSchema(responseSchemaPath(this.version, name))) as Json;
    }
    return ref("schemas", component);
  }

  private rewrite(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.rewrite(v));
    if (value === null || typeof value !== "object") return value;
    const out: Json = {};
    for (const [key, inner] of Object.entries(value)) {
      const file = key === "$ref" && typeof inner === "string" ? /^(\w[\w-]*)\.json$/.exec(inner)?.[1] : undefined;
      out[key] = file === undefined ? this.rewrite(inner) : this.named(file).$ref;
    }
    return out;
  }
}

/** `users.create` → `UsersCreate`, `socket_tokens` → `SocketTokens`. */
function pascal(name: string): string {
  return name
    .split(/[._-]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");
}

const PAGINATION: Json[] = [
  { name: "limit", in: "query", required: false, description: "Items per page", schema: { type: "integer", minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT } },
  { name: "cursor", in: "query", required: false, description: "An opaque cursor from a `next` or `prev` link", schema: { type: "string" } },
];

const IF_NONE_MATCH: Json = {
  name: "If-None-Match",
  in: "header",
  required: false,
  description: "ETags of representations the client holds; a match gets 304",
  schema: { type: "string" },
};

const IDEMPOTENCY_KEY: Json = {
  name: "Idempotency-Key",
  in: "header",
  required: false,
  description:
    "Makes the POST safe to retry for 24 h: the same key with the same request replays the first result (`Idempotent-Replayed: true`); with a different request → 422; while the first is running → 409. 1–255 visible ASCII characters; use a random UUID.",
  schema: { type: "string", minLength: 1, maxLength: 255 },
};

const string = { schema: { type: "string" } };

const HEADERS: Record<string, Json> = {
  ETag: { description: "A strong entity tag of this representation (the version is part of it)", ...string },
  Location: { description: "The created resource", ...string },
  Link: { description: "RFC 8288 links: the page's `next` and `prev`", ...string },
  "Idempotent-Replayed": { description: "`true` when this is the stored result of an earlier request with the same Idempotency-Key", schema: { const: "true" } },
  "RateLimit-Policy": { description: 'The quota policy (draft-ietf-httpapi-ratelimit-headers), e.g. `"api";q=600;w=60`', ...string },
  RateLimit: { description: 'What is left of the quota and when it resets, in seconds, e.g. `"api";r=599;t=60`', ...string },
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
  "WWW-Authenticate": { description: "A Bearer challenge", ...string },
  Allow: { description: "The methods the resource supports", ...string },
  Deprecation: { description: "RFC 9745: when this version was deprecated, as `@<epoch seconds>`", ...string },
  Sunset: { description: "RFC 8594: when this version stops being served (an HTTP date)", ...string },
};

/**
 * OpenAPI 3.1 documents, one per version, generated at boot from the two things that already
 * describe the API: the composed routes (router.ts: methods, paths, what success returns, and
 * the chain steps of each, which say what they add: parameters, headers, problems, security, the
 * body schema; route-steps.ts) and the JSON Schemas under `schemas/` — request bodies from
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
 *     const doc = buildOpenApi(composeRoutes(deps, routes(deps, options), limiter), { version: 2, versions: config.versions })
 *     doc.paths["/users/{id}"].get.responses["200"].content["application/vnd.app.v2+json"].schema
 *     // → { $ref: "#/components/schemas/User" }
 */
import { readSchema, responseSchemaPath } from "../schemas.ts";
import type { VersionPolicy } from "../version-policy.ts";
import { API_VERSIONS, CURRENT_VERSION, mediaType, type ApiVersion } from "../versions.ts";
import { contractOf, type DocumentVersion, type HeaderName, type StepContract } from "./chain.ts";
import { PROBLEMS } from "./problems.ts";
import type { ComposedRoute } from "./router.ts";
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

export function buildOpenApi(table: readonly ComposedRoute[], options: OpenApiOptions): Json {
  const { version } = options;
  const schemas = new SchemaCollector(version);
  const declared = options.versions.of(version);
  const deprecated = declared.status === "deprecated";
  const sunset = declared.sunset?.toISOString().slice(0, 10);
  const brownouts = declared.brownouts.map((w) => w.label);
  const paths: Record<string, Record<string, Json>> = {};
  const doc: DocumentVersion = { version, deprecated };
  for (const composed of table) {
    const { route } = composed;
    const path = route.path.replace(/:(\w+)/g, "{$1}");
    (paths[path] ??= {})[route.method] = operation(composed, doc, schemas);
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
      ...(deprecated
        ? {
            "x-sunset": declared.sunset?.toISOString() ?? null,
            "x-brownouts": brownouts,
            "x-sunset-reached": options.sunsetReached === true,
          }
        : {}),
    },
    servers: [
      { url: `/v${version}`, description: "the URL prefix pins the version" },
      { url: "/", description: `unprefixed: send Accept: ${vendor}` },
    ],
    tags: [...new Set(table.map((r) => tagOf(r.route)))].map((name) => ({ name })),
    paths,
    components: {
      schemas: schemas.components,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description: "The opaque token from POST /sessions: `Authorization: Bearer <token>`.",
        },
      },
      headers: HEADERS,
    },
  };
}

function operation({ route, steps }: ComposedRoute, doc: DocumentVersion, schemas: SchemaCollector): Json {
  const vendor = mediaType(doc.version);
  const contracts = steps.map((step) => contractOf(step, doc));
  // Path, then query, then header parameters, each in the order of the steps.
  const parameters = contracts
    .flatMap((c) => c.parameters ?? [])
    .sort((a, b) => PARAMETER_ORDER.indexOf(String(a["in"])) - PARAMETER_ORDER.indexOf(String(b["in"])));
  const body = contracts.find((c) => c.body !== undefined)?.body;
  const headers = (names: Iterable<HeaderName>): Json =>
    Object.fromEntries([...new Set(names)].map((name) => [name, ref("headers", name)]));
  const successHeaders = headers(contracts.flatMap((c) => c.headers ?? []));

  const responses: Record<string, Json> = {};
  const representation =
    route.returns.view === undefined ? undefined : schemas.response(route.returns.view, route.returns.collection);
  for (const status of route.returns.status) {
    responses[String(status)] = {
      description:
        route.returns.descriptions?.[status] ?? (status === 204 ? "No Content" : status === 201 ? "Created" : "OK"),
      headers: successHeaders,
      ...(representation === undefined ? {} : { content: { [vendor]: { schema: representation } } }),
    };
  }
  for (const c of contracts) {
    for (const [status, other] of Object.entries(c.responses ?? {}))
      responses[status] = { description: other.description, headers: headers(other.headers) };
  }
  for (const [status, { titles, headerNames }] of problemsOf(contracts)) {
    responses[String(status)] = {
      description: titles.join("; "),
      ...(headerNames.size > 0 ? { headers: headers(headerNames) } : {}),
      content: { [PROBLEM_JSON]: { schema: schemas.named("problem") } },
    };
  }
  responses["default"] = {
    description: "Any other problem",
    content: { [PROBLEM_JSON]: { schema: schemas.named("problem") } },
  };

  return {
    operationId: route.name,
    tags: [tagOf(route)],
    ...(doc.deprecated ? { deprecated: true } : {}),
    ...(contracts.some((c) => c.bearer === true) ? { security: [{ bearer: [] }] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            content: {
              [vendor]: { schema: schemas.request(body) },
              "application/json": { schema: schemas.request(body) },
            },
          },
        }),
    responses,
  };
}

const PARAMETER_ORDER = ["path", "query", "header"];

function tagOf(route: Route): string {
  return route.name.split(".")[0]!;
}

/** The problems the route's steps may answer, by status: their titles and the headers they carry. */
function problemsOf(
  contracts: readonly StepContract[],
): Map<number, { titles: string[]; headerNames: Set<HeaderName> }> {
  const byStatus = new Map<number, { titles: string[]; headerNames: Set<HeaderName> }>();
  const declared = contracts
    .flatMap((c) => c.problems ?? [])
    .map((p) => ({ ...(typeof p.kind === "string" ? PROBLEMS[p.kind] : p.kind), headerNames: p.headers ?? [] }));
  for (const { status, title, headerNames } of declared.sort((a, b) => a.status - b.status)) {
    const entry = byStatus.get(status) ?? { titles: [], headerNames: new Set<HeaderName>() };
    if (!entry.titles.includes(title)) entry.titles.push(title);
    for (const name of headerNames) entry.headerNames.add(name);
    byStatus.set(status, entry);
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
        _embedded: {
          type: "object",
          required: [collection],
          additionalProperties: false,
          properties: { [collection]: { type: "array", items: item } },
        },
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

const string = { schema: { type: "string" } };

const HEADERS: Record<HeaderName, Json> = {
  ETag: { description: "A strong entity tag of this representation (the version is part of it)", ...string },
  Location: { description: "The created resource", ...string },
  Link: { description: "RFC 8288 links: the page's `next` and `prev`", ...string },
  "Idempotent-Replayed": {
    description: "`true` when this is the stored result of an earlier request with the same Idempotency-Key",
    schema: { const: "true" },
  },
  "RateLimit-Policy": {
    description: 'The quota policy (draft-ietf-httpapi-ratelimit-headers), e.g. `"api";q=600;w=60`',
    ...string,
  },
  RateLimit: {
    description: 'What is left of the quota and when it resets, in seconds, e.g. `"api";r=599;t=60`',
    ...string,
  },
  "Retry-After": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
  "WWW-Authenticate": { description: "A Bearer challenge", ...string },
  Allow: { description: "The methods the resource supports", ...string },
  Deprecation: { description: "RFC 9745: when this version was deprecated, as `@<epoch seconds>`", ...string },
  Sunset: { description: "RFC 8594: when this version stops being served (an HTTP date)", ...string },
};

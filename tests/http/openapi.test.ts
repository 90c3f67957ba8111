/**
 * The OpenAPI documents and GET /versions: both documents pass a strict OpenAPI 3.1 validator,
 * describe what the route table says, and every real response of every route (both versions,
 * successes and problems) matches the schema its document gives for that status and media type.
 */
import test, { type ExecutionContext } from "ava";
import { Validator } from "@seriousme/openapi-schema-validator";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { VERSIONS, mediaType, type ApiVersion } from "../../lib/versions.ts";
import { startTestServer, type TestResponse, type TestServer } from "../helpers/http.ts";

type Json = Record<string, any>;

const BROWNOUTS = "2027-05-04T16:00:00Z/PT1H";
const WINDOW = "2027-05-04T16:00:00.000Z/2027-05-04T17:00:00.000Z";

let app: TestServer;
const docs = new Map<ApiVersion, Json>();
test.before(async () => {
  app = await startTestServer({ V1_SUNSET: "2027-06-30", V1_BROWNOUTS: BROWNOUTS });
  for (const v of [1, 2] as const) docs.set(v, (await app.request("GET", `/openapi/v${v}.json`)).body);
});
test.after.always(async () => {
  await app?.stop();
});

for (const version of [1, 2] as const) {
  test(`GET /openapi/v${version}.json is a valid OpenAPI 3.1 document, whatever the Accept`, async (t) => {
    for (const accept of [undefined, "text/html", "application/vnd.app.v3+json", mediaType(version === 1 ? 2 : 1)]) {
      const res = await app.request("GET", `/openapi/v${version}.json`, accept === undefined ? {} : { accept });
      t.is(res.status, 200, `Accept: ${accept}`);
      t.regex(res.headers.get("content-type") ?? "", /^application\/json/);
      t.deepEqual(res.body, docs.get(version));
    }
    const validator = new Validator();
    const result = await validator.validate(structuredClone(docs.get(version)!));
    t.true(result.valid, JSON.stringify(result.errors, null, 1));
    t.is(validator.version, "3.1");
  });

  test(`the v${version} document carries its changelog entry and, when deprecated, its sunset and brownouts`, (t) => {
    const info = docs.get(version)!.info;
    t.deepEqual(
      info["x-changes"],
      VERSIONS[version].changes.map((c) => ({ ...c })),
    );
    for (const change of VERSIONS[version].changes)
      t.true(
        (info.description as string).includes(`- **${change.resource}**: ${change.description}`),
        change.description,
      );
    if (version === 1) {
      t.is(info["x-sunset"], "2027-06-30T00:00:00.000Z");
      t.deepEqual(info["x-brownouts"], [WINDOW]);
      t.is(info["x-sunset-reached"], false);
      t.regex(
        info.description,
        /\*\*Deprecated\*\* since 2026-01-01; served until 2027-06-30, except during the brownouts /,
      );
      t.true((info.description as string).includes(WINDOW), "the description names the window");
    } else {
      for (const key of ["x-sunset", "x-brownouts", "x-sunset-reached"]) t.false(key in info, key);
      t.regex(info.description, /The current version/);
    }
  });

  test(`the v${version} document lists the vendor media type, parameters, security, problems and pagination`, (t) => {
    const doc = docs.get(version)!;
    const vendor = mediaType(version);
    const show = doc.paths["/users/{id}"].get;
    t.deepEqual(Object.keys(show.responses["200"].content), [vendor]);
    t.deepEqual(show.parameters[0], {
      name: "id",
      in: "path",
      required: true,
      schema: { type: "integer", minimum: 1, maximum: 2147483647 },
    });
    t.deepEqual(show.security, [{ bearer: [] }]);
    t.deepEqual(doc.components.securitySchemes.bearer, {
      type: "http",
      scheme: "bearer",
      description: doc.components.securitySchemes.bearer.description,
    });
    for (const status of ["401", "404", "406", "429", "503"])
      t.deepEqual(Object.keys(show.responses[status].content), ["application/problem+json"], status);
    t.truthy(show.responses["304"]);
    t.truthy(show.responses["200"].headers.ETag);
    t.truthy(show.parameters.find((p: Json) => p.name === "If-None-Match" && p.in === "header"));

    const create = doc.paths["/users"].post;
    t.is(create.security, undefined, "sign-up is public");
    t.deepEqual(Object.keys(create.requestBody.content).sort(), ["application/json", vendor].sort());
    // A deprecated version can be withdrawn (brownouts, sunset): its operations also answer 410.
    t.deepEqual(
      Object.keys(create.responses)
        .filter((s) => /^\d/.test(s))
        .sort(),
      ["201", "400", "406", "409", ...(version === 1 ? ["410"] : []), "413", "415", "422", "429", "503"],
      "sign-up is limited per client address",
    );
    t.truthy(create.responses["201"].headers.Location);
    t.truthy(create.parameters.find((p: Json) => p.name === "Idempotency-Key"));
    const sportsField = version === 1 ? "favorite_sport" : "favorite_sports";
    t.truthy(
      doc.components.schemas.UsersCreateRequest.properties[sportsField],
      "the request schema is the version's own",
    );
    t.truthy(doc.components.schemas.User.properties[sportsField], "the representation is the version's own");

    const index = doc.paths["/rooms/{id}/messages"].get;
    t.deepEqual(
      index.parameters.map((p: Json) => p.name),
      ["id", "limit", "cursor", "If-None-Match"],
    );
    t.is(index.responses["200"].content[vendor].schema.$ref, "#/components/schemas/MessagesPage");
    t.truthy(index.responses["400"], "a bad limit or cursor");

    t.is(doc.paths["/sessions"].post.parameters, undefined, "log-in answers carry a credential: no Idempotency-Key");
    t.truthy(doc.paths["/sessions"].post.responses["429"].headers["Retry-After"]);
    t.is(doc.paths["/users/{id}"].delete.responses["204"].content, undefined);
    t.deepEqual(
      doc.servers.map((s: Json) => s.url),
      [`/v${version}`, "/"],
    );
    const operations = Object.values(doc.paths).flatMap((p) => Object.values(p as Json));
    t.is(operations.length, 20);
    t.true(
      operations.every((op: Json) => (op.deprecated === true) === (version === 1)),
      "every v1 operation is deprecated, no v2 one",
    );
  });
}

/** The operation for a request, by matching its path against the document's templates. */
function operationFor(doc: Json, method: string, path: string): Json {
  const bare = path.split("?")[0]!.replace(/^\/v\d+(?=\/|$)/, "") || "/";
  for (const [template, item] of Object.entries(doc.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{\w+\}/g, "[^/]+")}$`);
    if (pattern.test(bare) && (item as Json)[method.toLowerCase()] !== undefined)
      return (item as Json)[method.toLowerCase()];
  }
  throw new Error(`no operation for ${method} ${bare}`);
}

const validators = new Map<string, ValidateFunction>();
function compiled(version: ApiVersion, $ref: string): ValidateFunction {
  const key = `${version}${$ref}`;
  let check = validators.get(key);
  if (check === undefined) {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats.default(ajv);
    ajv.addSchema({ $id: "doc", components: docs.get(version)!.components });
    check = ajv.compile({ $ref: `doc${$ref}` });
    validators.set(key, check);
  }
  return check;
}

/** The response's status is documented for its operation, with its media type, and the body matches that schema. */
function assertDocumented(
  t: ExecutionContext,
  version: ApiVersion,
  method: string,
  path: string,
  res: TestResponse,
): void {
  const op = operationFor(docs.get(version)!, method, path);
  const documented = op.responses[String(res.status)];
  t.truthy(documented, `${method} ${path} → ${res.status} is documented`);
  if (res.status === 204 || res.status === 304) {
    t.is(documented?.content, undefined);
    return;
  }
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!;
  const schema = documented?.content?.[type]?.schema;
  t.truthy(schema, `${method} ${path} → ${res.status} documents ${type}`);
  const check = compiled(version, schema.$ref);
  t.true(check(res.body), `${method} ${path} → ${res.status}: ${JSON.stringify(check.errors)} in ${res.text}`);
}

for (const version of [1, 2] as const) {
  test(`every route's real responses match the v${version} document`, async (t) => {
    const prefix = `/v${version}`;
    const call = async (method: string, path: string, options: Parameters<TestServer["request"]>[2] = {}) => {
      const res = await app.request(method, `${prefix}${path}`, options);
      assertDocumented(t, version, method, path, res);
      return res;
    };
    const sports = version === 1 ? { favorite_sport: "Chess" } : { favorite_sports: ["Chess", "Go"] };
    await call("GET", "/");
    const email = `ada-v${version}@example.com`;
    const created = await call("POST", "/users", {
      json: { name: "Ada", email, password: "correct horse", ...sports },
    });
    t.is(created.status, 201);
    await call("POST", "/users", { json: { name: "Ada", email, password: "correct horse" } }); // 409
    await call("POST", "/users", { json: { name: "" } }); // 422
    const session = await call("POST", "/sessions", { json: { email, password: "correct horse" } });
    await call("POST", "/sessions", { json: { email, password: "wrong password" } }); // 401
    const token = session.body.token as string;
    const other = await app.signUp("Bob");
    await call("POST", "/socket-tokens", { token });
    await call("GET", "/users", { token });
    await call("GET", "/users?limit=1", { token });
    await call("GET", "/users?limit=0", { token }); // 400
    await call("GET", `/users/${created.body.id}`, { token });
    await call("GET", `/users/${other.id}`, { token }); // no email: not the viewer
    await call("GET", "/users/999999", { token }); // 404
    await call("GET", "/users", {}); // 401
    await call("PATCH", `/users/${created.body.id}`, { token, json: { name: "Ada L." } });
    await call("PATCH", `/users/${other.id}`, { token, json: { name: "Bobby" } }); // 403
    const room = await call("POST", "/rooms", { token, json: { name: "lobby", private: true } });
    await call("GET", "/rooms", { token });
    await call("GET", `/rooms/${room.body.id}`, { token });
    await call("POST", `/rooms/${room.body.id}/members`, { token, json: { user_id: other.id } }); // 201
    await call("POST", `/rooms/${room.body.id}/members`, { token, json: { user_id: other.id } }); // 200
    await call("POST", `/rooms/${room.body.id}/members`, { token: other.token, json: { user_id: other.id } }); // 403
    await call("GET", `/rooms/${room.body.id}/members`, { token });
    const message = await call("POST", `/rooms/${room.body.id}/messages`, { token, json: { body: "hello" } });
    await call("POST", `/rooms/${room.body.id}/messages`, { token, raw: "{not json", contentType: "application/json" }); // 400
    await call("POST", `/rooms/${room.body.id}/messages`, { token, raw: "hi", contentType: "text/plain" }); // 415
    await call("GET", `/rooms/${room.body.id}/messages`, { token });
    await call("GET", `/rooms/${room.body.id}/messages/${message.body.id}`, { token });
    await call("GET", `/rooms/${room.body.id}/presence`, { token });
    await call("GET", `/rooms/${room.body.id}`, { token, accept: mediaType(version === 1 ? 2 : 1) }); // 406
    await call("DELETE", `/users/${other.id}`, { token: other.token }); // 204
    await call("DELETE", "/sessions", { token }); // 204
  });
}

test("GET /versions lists the versions, which is deprecated, its sunset, media types, prefixes and documents", async (t) => {
  for (const accept of [undefined, "text/html", "application/vnd.app.v1+json"]) {
    const res = await app.request("GET", "/versions", accept === undefined ? {} : { accept });
    t.is(res.status, 200);
    t.regex(res.headers.get("content-type") ?? "", /^application\/json/);
    t.deepEqual(res.body, {
      current_version: 2,
      default_version: 2,
      versions: [
        {
          version: 2,
          status: "current",
          changes: VERSIONS[2].changes.map((c) => ({ ...c })),
          media_types: ["application/vnd.app.v2+json", "application/vnd.app+json; version=2"],
          url_prefix: "/v2",
          openapi: "/openapi/v2.json",
        },
        {
          version: 1,
          status: "deprecated",
          deprecated_at: "2026-01-01T00:00:00.000Z",
          sunset: "2027-06-30T00:00:00.000Z",
          brownouts: [{ start: "2027-05-04T16:00:00.000Z", end: "2027-05-04T17:00:00.000Z" }],
          successor_version: 2,
          changes: VERSIONS[1].changes.map((c) => ({ ...c })),
          media_types: ["application/vnd.app.v1+json", "application/vnd.app+json; version=1"],
          url_prefix: "/v1",
          openapi: "/openapi/v1.json",
        },
      ],
    });
  }
  // The sunset announced here is the one the v1 responses carry.
  const v1 = await app.request("GET", "/v1/");
  t.is(new Date(v1.headers.get("sunset")!).toISOString(), "2027-06-30T00:00:00.000Z");
  const post = await app.request("POST", "/versions", { json: {} });
  t.is(post.status, 405);
  t.is(post.headers.get("allow"), "GET, HEAD");
});

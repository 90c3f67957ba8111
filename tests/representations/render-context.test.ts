import test from "ava";
import { link, timestamp, type Renderers } from "../../representations/render-context.ts";
import { API_VERSIONS, mediaType } from "../../lib/versions.ts";

test("link() carries the version's media type and the request's prefix", (t) => {
  t.deepEqual(link({ version: 1, basePath: "" }, "/users/1"), {
    href: "/users/1",
    type: "application/vnd.app.v1+json",
  });
  t.deepEqual(link({ version: 2, basePath: "/v2" }, "/users/1"), {
    href: "/v2/users/1",
    type: "application/vnd.app.v2+json",
  });
  t.deepEqual(link({ version: 1, basePath: "/v1" }, "/users/{id}", { templated: true }), {
    href: "/v1/users/{id}",
    type: "application/vnd.app.v1+json",
    templated: true,
  });
  t.false("templated" in link({ version: 2, basePath: "" }, "/rooms", { templated: false }));
  for (const version of API_VERSIONS) t.is(link({ version, basePath: "" }, "/").type, mediaType(version));
});

test("timestamp() is ISO 8601 in UTC", (t) => {
  t.is(timestamp(new Date("2026-03-04T05:06:07.089+02:00")), "2026-03-04T03:06:07.089Z");
});

test("a renderer registry must cover every ApiVersion, and only those (checked by tsc --noEmit)", (t) => {
  // @ts-expect-error a renderer registry must cover every ApiVersion
  const missing = { 2: (x: number) => ({ x }) } satisfies Renderers<number>;
  const extra = {
    1: (x: number) => ({ x }),
    2: (x: number) => ({ x }),
    // @ts-expect-error a registry may not render a version the API does not serve
    3: (x: number) => ({ x }),
  } satisfies Renderers<number>;
  // @ts-expect-error a renderer returns a JSON object, not a string
  const wrong = { 1: (x: number) => String(x), 2: (x: number) => ({ x }) } satisfies Renderers<number>;
  const complete = { 1: (x: number) => ({ x }), 2: (x: number) => ({ y: x }) } satisfies Renderers<number>;
  t.false(1 in missing);
  t.true(3 in extra);
  t.is(typeof wrong[1], "function");
  t.deepEqual(complete[2](7), { y: 7 });
});

/**
 * lib/http/accept.ts, pure: version negotiation from `Accept` (and a `/vN` pin) and the
 * classification of request-body Content-Types. Tables for the cases the contract names, then
 * fast-check properties over random headers (fixed seed; FC_SEED=<n> explores other runs).
 */
import test from "ava";
import fc from "fast-check";
import {
  classifyBodyType,
  negotiate,
  supportedMediaTypes,
  type Negotiation,
  type NegotiationRequest,
} from "../../lib/http/accept.ts";
import { API_VERSIONS, type ApiVersion } from "../../lib/versions.ts";

/**
 * The version `Accept` (and a `/vN` prefix) select with every version offered and no pin, or
 * undefined for 406: `negotiate` asked only that.
 */
function versionFor(accept: string | undefined, prefix?: ApiVersion): ApiVersion | undefined {
  const result = negotiate({ accept, prefix });
  return result.kind === "ok" ? result.version : undefined;
}

fc.configureGlobal({ seed: Number(process.env["FC_SEED"] ?? 20260101), numRuns: 400 });

const V1 = "application/vnd.app.v1+json";
const V2 = "application/vnd.app.v2+json";

const NEGOTIATION: ReadonlyArray<
  [accept: string | undefined, pinned: ApiVersion | undefined, expected: ApiVersion | undefined]
> = [
  [undefined, undefined, 2],
  ["", undefined, 2],
  ["   ", undefined, 2],
  ["*/*", undefined, 2],
  ["application/*", undefined, 2],
  ["application/json", undefined, 2],
  [V1, undefined, 1],
  [V2, undefined, 2],
  ["application/vnd.app+json; version=1", undefined, 1],
  ["application/vnd.app+json;version=2", undefined, 2],
  ["application/vnd.app+json", undefined, 2],
  ["APPLICATION/VND.APP.V1+JSON", undefined, 1],
  [`${V1};q=0.5, ${V2};q=0.4`, undefined, 1],
  [`${V2};q=0.4, ${V1};q=0.5`, undefined, 1],
  [`application/json;q=0.9, ${V1}`, undefined, 1],
  [`application/json, ${V1};q=0.1`, undefined, 2],
  [`*/*, ${V2};q=0`, undefined, 1],
  [`application/json, ${V2};q=0`, undefined, 1], // the default is excluded by name
  [`application/json, ${V1};q=0, ${V2};q=0`, undefined, undefined],
  [`${V1};q=0`, undefined, undefined],
  ["*/*;q=0", undefined, undefined],
  ["text/html", undefined, undefined],
  ["application/vnd.app.v3+json", undefined, undefined],
  ["application/vnd.app+json; version=3", undefined, undefined],
  ["application/vnd.app.v3+json, */*;q=0.1", undefined, 2],
  ["text/html, application/xhtml+xml;q=0.9, */*;q=0.8", undefined, 2],
  [undefined, 1, 1],
  ["*/*", 1, 1],
  ["application/json", 1, 1],
  ["application/vnd.app+json", 1, 1],
  [V1, 1, 1],
  [V2, 1, undefined],
  [V1, 2, undefined],
  [`${V1}, ${V2};q=0.1`, 2, 2],
  [`application/json, ${V1};q=0`, 1, undefined],
];

for (const [accept, pinned, expected] of NEGOTIATION) {
  test(`versionFor(${JSON.stringify(accept)}${pinned === undefined ? "" : `, pinned ${pinned}`}) → ${expected ?? "406"}`, (t) => {
    t.is(versionFor(accept, pinned), expected);
  });
}

// The pin and the withdrawn versions are inputs of the same function.
const V1_GONE = new Set([1] as const);
const ok = (version: ApiVersion): Negotiation => ({ kind: "ok", version });
const gone = (version: ApiVersion): Negotiation => ({ kind: "gone", version });
const NOT_ACCEPTABLE: Negotiation = { kind: "not_acceptable" };
const WITH_PIN_AND_CLOCK: ReadonlyArray<[NegotiationRequest, Negotiation, string]> = [
  [{ accept: undefined, pin: 1 }, ok(1), "no Accept: the pin"],
  [{ accept: "*/*", pin: 1 }, ok(1), "*/* names no version"],
  [{ accept: "application/*", pin: 1 }, ok(1), "application/* names no version"],
  [{ accept: "application/json", pin: 1 }, ok(1), "application/json names no version"],
  [{ accept: "application/vnd.app+json", pin: 1 }, ok(1), "the bare vendor type names no version"],
  [{ accept: "text/html, */*;q=0.1", pin: 1 }, ok(1), "a browser's Accept names no version"],
  [{ accept: V2, pin: 1 }, ok(2), "a named version beats the pin"],
  [{ accept: "application/vnd.app+json; version=2", pin: 1 }, ok(2), "so does the parameter form"],
  [{ accept: undefined, pin: 2 }, ok(2), "pinned to the default"],
  [{ accept: undefined, pin: 1, prefix: 2 }, ok(2), "a prefix beats the pin"],
  [{ accept: `application/json, ${V1};q=0`, pin: 1 }, ok(2), "the pin excluded by name with q=0"],
  [{ accept: V1, withdrawn: V1_GONE }, gone(1), "only v1 acceptable, v1 withdrawn: 410"],
  [{ accept: "application/vnd.app+json; version=1", withdrawn: V1_GONE }, gone(1), "the parameter form too"],
  [{ accept: `${V1}, text/html;q=0.5`, withdrawn: V1_GONE }, gone(1), "nothing else we serve is acceptable"],
  [
    { accept: `${V1}, application/json;q=0.5`, withdrawn: V1_GONE },
    ok(2),
    "as if v1 were not listed: generic JSON is next",
  ],
  [{ accept: `${V1}, ${V2};q=0.1`, withdrawn: V1_GONE }, ok(2), "v2 is acceptable too"],
  [{ accept: "application/vnd.app.v3+json", withdrawn: V1_GONE }, NOT_ACCEPTABLE, "v3 is not ours: 406, not 410"],
  [{ accept: undefined, prefix: 1, withdrawn: V1_GONE }, gone(1), "the /v1 prefix"],
  [{ accept: V2, prefix: 1, withdrawn: V1_GONE }, gone(1), "the /v1 prefix whatever the Accept"],
  [{ accept: "text/html", prefix: 1, withdrawn: V1_GONE }, gone(1), "even an unacceptable one"],
  [{ accept: undefined, prefix: 2, pin: 1, withdrawn: V1_GONE }, ok(2), "the /v2 prefix serves a caller pinned to v1"],
  [{ accept: undefined, pin: 1, withdrawn: V1_GONE }, gone(1), "pinned to v1, naming no version"],
  [{ accept: "*/*", pin: 1, withdrawn: V1_GONE }, gone(1), "a wildcard does not name v2"],
  [{ accept: "application/json", pin: 1, withdrawn: V1_GONE }, gone(1), "neither does generic JSON"],
  [{ accept: "application/vnd.app+json", pin: 1, withdrawn: V1_GONE }, gone(1), "nor the bare vendor type"],
  [{ accept: V2, pin: 1, withdrawn: V1_GONE }, ok(2), "pinned to v1 but naming v2"],
  [{ accept: `application/json, ${V2};q=0.5`, pin: 1, withdrawn: V1_GONE }, ok(2), "naming v2 anywhere with q>0"],
  [{ accept: undefined, pin: 2, withdrawn: V1_GONE }, ok(2), "pinned to v2, nothing changes"],
  [{ accept: undefined, withdrawn: V1_GONE }, ok(2), "no pin: the default"],
  [{ accept: "*/*", withdrawn: V1_GONE }, ok(2), "no pin, a wildcard: the default"],
  [{ accept: `*/*, ${V2};q=0`, withdrawn: V1_GONE }, gone(1), "v2 excluded, v1 withdrawn: only v1 could have served"],
];

for (const [request, expected, why] of WITH_PIN_AND_CLOCK) {
  test(`negotiate(${JSON.stringify({ ...request, withdrawn: request.withdrawn === undefined ? undefined : [...request.withdrawn] })}) → ${JSON.stringify(expected)}: ${why}`, (t) => {
    t.deepEqual(negotiate(request), expected);
  });
}

test("with nothing withdrawn, negotiate and a pin never turn a version the header names into another", (t) => {
  fc.assert(
    fc.property(header, pinned, version, (accept, prefix, pin) => {
      const plain = versionFor(accept, prefix);
      const result = negotiate({ accept, prefix, pin });
      // A pin only changes answers to types naming no version; whatever it gives is a supported version or 406 as before.
      return plain === undefined ? result.kind === "not_acceptable" : result.kind === "ok";
    }),
  );
  // A header whose most preferred type names version v (q=1, every other entry below it and none
  // naming v) gets v, whatever the pin: a pin never turns the version the header names into another.
  fc.assert(
    fc.property(
      version,
      fc.boolean(),
      fc.array(fc.tuple(range, fc.integer({ min: 0, max: 999 })), { maxLength: 7 }),
      fc.nat(),
      pinned,
      fc.boolean(),
      (v, vendorForm, others, at, pin, withPrefix) => {
        const entries = others.filter(([r]) => !namesOf(v).includes(r)).map(([r, q]) => `${r};q=${qOf(q)}`);
        entries.splice(at % (entries.length + 1), 0, namesOf(v)[vendorForm ? 0 : 1]!);
        const accept = entries.join(", ");
        const result = negotiate({ accept, prefix: withPrefix ? v : undefined, pin });
        return result.kind === "ok" && result.version === v;
      },
    ),
  );
  t.pass();
});

test("a withdrawn version is never served, whatever the header, prefix and pin", (t) => {
  fc.assert(
    fc.property(
      fc.oneof(header, fc.string()),
      pinned,
      pinned,
      fc.subarray([...API_VERSIONS]),
      (accept, prefix, pin, gone) => {
        const result = negotiate({ accept, prefix, pin, withdrawn: new Set(gone) });
        return result.kind !== "ok" || !gone.includes(result.version);
      },
    ),
  );
  t.pass();
});

test("supportedMediaTypes lists both vendor forms of every version and generic JSON", (t) => {
  const types = supportedMediaTypes();
  for (const v of API_VERSIONS) {
    t.true(types.includes(`application/vnd.app.v${v}+json`));
    t.true(types.includes(`application/vnd.app+json; version=${v}`));
  }
  t.true(types.includes("application/json"));
});

const BODY_TYPES: ReadonlyArray<[string | undefined, ReturnType<typeof classifyBodyType>]> = [
  [undefined, { kind: "missing" }],
  ["", { kind: "missing" }],
  ["application/json", { kind: "json", version: undefined }],
  ["Application/JSON; charset=UTF-8", { kind: "json", version: undefined }],
  [V1, { kind: "json", version: 1 }],
  [`${V2}; charset=utf-8`, { kind: "json", version: 2 }],
  ["application/vnd.app+json; version=1", { kind: "json", version: 1 }],
  ["application/vnd.app+json", { kind: "json", version: undefined }], // names no version
  ["application/vnd.app.v3+json", { kind: "unsupported", mediaType: "application/vnd.app.v3+json" }],
  ["application/vnd.app+json; version=7", { kind: "unsupported", mediaType: "application/vnd.app+json; version=7" }],
  ["application/json; charset=latin1", { kind: "unsupported", mediaType: "application/json; charset=latin1" }],
  ["text/plain", { kind: "unsupported", mediaType: "text/plain" }],
  ["application/x-www-form-urlencoded", { kind: "unsupported", mediaType: "application/x-www-form-urlencoded" }],
  ["not a type", { kind: "unsupported", mediaType: "not a type" }],
];

for (const [contentType, expected] of BODY_TYPES) {
  test(`classifyBodyType(${JSON.stringify(contentType)}) → ${expected.kind}`, (t) => {
    t.deepEqual(classifyBodyType(contentType), expected);
  });
}

// ---- properties -------------------------------------------------------------------------

const RANGES = [
  "*/*",
  "application/*",
  "application/json",
  V1,
  V2,
  "application/vnd.app.v3+json",
  "application/vnd.app+json",
  "application/vnd.app+json; version=1",
  "application/vnd.app+json; version=2",
  "application/vnd.app+json; version=9",
  "text/html",
  "text/*",
  "image/png",
  "application/xml",
] as const;

/** The two names a client can give version `v`. */
function namesOf(v: ApiVersion): string[] {
  return [`application/vnd.app.v${v}+json`, `application/vnd.app+json; version=${v}`];
}

const token = fc.stringMatching(/^[a-z][a-z0-9.+-]{0,8}$/);
const range = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...RANGES) },
  { weight: 1, arbitrary: fc.tuple(token, token).map(([a, b]) => `${a}/${b}`) },
);
/** A q-value in thousandths, as RFC 9110 writes them: 0, 0.5, 0.125, 1. */
const qOf = (thousandths: number) => (thousandths === 1000 ? "1" : String(thousandths / 1000));
const quality = fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined });
const entry = fc.tuple(range, quality).map(([r, q]) => (q === undefined ? r : `${r};q=${qOf(q)}`));
const header = fc.array(entry, { maxLength: 8 }).map((entries) => entries.join(", "));
const version = fc.constantFrom(...API_VERSIONS);
const pinned = fc.option(version, { nil: undefined });

test("any header of media ranges with q-values yields a supported version or undefined, never a throw", (t) => {
  fc.assert(
    fc.property(header, pinned, (accept, pin) => {
      const result = versionFor(accept, pin);
      return result === undefined || API_VERSIONS.includes(result);
    }),
  );
  t.pass();
});

test("naming a vendor type with q=0 (either form, anywhere in the header) never lets that version win", (t) => {
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 8 }),
      version,
      fc.boolean(),
      fc.nat(),
      pinned,
      (entries, v, paramForm, at, pin) => {
        const exclusion = `${namesOf(v)[paramForm ? 1 : 0]!};q=0`;
        const withExclusion = [...entries];
        withExclusion.splice(at % (entries.length + 1), 0, exclusion);
        return versionFor(withExclusion.join(", "), pin) !== v;
      },
    ),
  );
  t.pass();
});

test("a header whose only entry with q>0 names one version yields that version", (t) => {
  fc.assert(
    fc.property(
      version,
      fc.boolean(),
      fc.integer({ min: 1, max: 1000 }),
      fc.array(fc.constantFrom(...RANGES), { maxLength: 6 }),
      fc.nat(),
      (v, paramForm, q, others, at) => {
        const zeroes = others.filter((r) => !namesOf(v).includes(r)).map((r) => `${r};q=0`);
        zeroes.splice(at % (zeroes.length + 1), 0, `${namesOf(v)[paramForm ? 1 : 0]!};q=${qOf(q)}`);
        return versionFor(zeroes.join(", ")) === v;
      },
    ),
  );
  t.pass();
});

test("permuting entries with distinct q-values does not change the result", (t) => {
  const entries = fc
    .uniqueArray(fc.integer({ min: 0, max: 1000 }), { minLength: 1, maxLength: 7 })
    .chain((qs) => fc.tuple(fc.array(range, { minLength: qs.length, maxLength: qs.length }), fc.constant(qs)))
    .map(([ranges, qs]) => ranges.map((r, i) => `${r};q=${qOf(qs[i]!)}`));
  fc.assert(
    fc.property(entries, fc.array(fc.nat()), pinned, (list, keys, pin) => {
      const shuffled = list
        .map((e, i) => [keys[i] ?? i, e] as const)
        .sort((a, b) => a[0] - b[0])
        .map(([, e]) => e);
      return versionFor(list.join(", "), pin) === versionFor(shuffled.join(","), pin);
    }),
  );
  t.pass();
});

test("a header of wildcards only (q>0) yields the default version, 2", (t) => {
  const wildcard = fc.tuple(
    fc.constantFrom("*/*", "application/*", "*/*", "Application/*"),
    fc.option(fc.integer({ min: 1, max: 1000 }), { nil: undefined }),
  );
  fc.assert(
    fc.property(fc.array(wildcard, { minLength: 1, maxLength: 5 }), (list) => {
      const accept = list.map(([r, q]) => (q === undefined ? r : `${r}; q=${qOf(q)}`)).join(" , ");
      return versionFor(accept) === 2;
    }),
  );
  t.pass();
});

test("a pinned version only ever yields the pinned version or undefined", (t) => {
  fc.assert(
    fc.property(fc.oneof(header, fc.string()), version, (accept, pin) => {
      const result = versionFor(accept, pin);
      return result === undefined || result === pin;
    }),
  );
  t.pass();
});

test("garbage never throws, in Accept or in Content-Type", (t) => {
  const garbage = fc.oneof(
    fc.string(),
    fc.string({ unit: "binary" }),
    fc.stringMatching(/^[\w*/;=,." \t\\()<>@:?-]{0,60}$/),
    fc
      .array(
        fc.constantFrom(
          "*/*",
          ";",
          ",",
          "q=",
          "=",
          '"',
          "version=",
          "application/vnd.app",
          "+json",
          "\t",
          "q=abc",
          "q=1.5",
        ),
        { maxLength: 12 },
      )
      .map((p) => p.join("")),
  );
  fc.assert(
    fc.property(garbage, pinned, (text, pin) => {
      const result = versionFor(text, pin);
      const body = classifyBodyType(text);
      return (
        (result === undefined || API_VERSIONS.includes(result)) &&
        ["json", "missing", "unsupported"].includes(body.kind)
      );
    }),
  );
  t.pass();
});

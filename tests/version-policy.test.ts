/**
 * lib/version-policy.ts, pure: ISO 8601 brownout intervals parsed (or refused, saying what
 * was expected); each version's facts, the declaration and the schedule merged; which versions
 * are withdrawn at a given instant — after the sunset for good, inside a brownout window until it
 * ends — plus V1_SUNSET and V1_BROWNOUTS validated at boot into `config.versions`.
 */
import test from "ava";
import { ConfigError, loadConfig } from "../lib/config.ts";
import { describeWithdrawal, parseIntervals, versionPolicy } from "../lib/version-policy.ts";
import { VERSIONS } from "../lib/versions.ts";

const at = (iso: string) => new Date(iso);

test("parseIntervals reads start/duration and start/end, with offsets, comma-separated", (t) => {
  const windows = parseIntervals(
    "2027-05-04T16:00:00Z/PT1H, 2027-05-11T18:00:00+02:00/2027-05-11T18:30:00+02:00,2027-05-18T00:00Z/P1DT30M",
  );
  t.deepEqual(
    windows.map((w) => w.label),
    [
      "2027-05-04T16:00:00.000Z/2027-05-04T17:00:00.000Z",
      "2027-05-11T16:00:00.000Z/2027-05-11T16:30:00.000Z",
      "2027-05-18T00:00:00.000Z/2027-05-19T00:30:00.000Z",
    ],
  );
  t.deepEqual(parseIntervals(""), []);
  t.deepEqual(parseIntervals(" , "), []);
  t.is(parseIntervals("2027-05-04T16:00:00Z/P1W")[0]!.end.toISOString(), "2027-05-11T16:00:00.000Z");
  t.is(parseIntervals("2027-05-04T16:00:00Z/PT90S")[0]!.end.toISOString(), "2027-05-04T16:01:30.000Z");
});

for (const bad of [
  "2027-05-04T16:00:00Z",
  "2027-05-04/PT1H",
  "2027-05-04T16:00:00/PT1H",
  "2027-05-04T16:00:00Z/P1M",
  "2027-05-04T16:00:00Z/P1Y",
  "2027-05-04T16:00:00Z/PT",
  "2027-05-04T16:00:00Z/P",
  "2027-05-04T16:00:00Z/PT0H",
  "2027-05-04T16:00:00Z/2027-05-04T15:00:00Z",
  "2027-05-04T16:00:00Z/PT1H/PT1H",
  "tomorrow/PT1H",
  "2027-13-04T16:00:00Z/PT1H",
]) {
  test(`parseIntervals refuses ${JSON.stringify(bad)}, saying what it expected`, (t) => {
    const error = t.throws(() => parseIntervals(bad));
    t.regex(error?.message ?? "", /expected start\/end or start\/duration like 2027-05-04T16:00:00Z\/PT1H/);
    t.true((error?.message ?? "").includes(JSON.stringify(bad)));
  });
}

const policy = versionPolicy({
  1: {
    sunset: at("2027-06-30T00:00:00Z"),
    brownouts: parseIntervals("2027-05-04T16:00:00Z/PT1H,2027-05-04T16:30:00Z/PT2H"),
  },
});
const withdrawal = policy.withdrawal;

test("a version is offered before a window, withdrawn inside it (the longest overlapping window decides), offered again after", (t) => {
  t.is(withdrawal(1, at("2027-05-04T15:59:59.999Z")), undefined);
  t.like(withdrawal(1, at("2027-05-04T16:00:00Z")), { reason: "brownout" });
  const overlapping = withdrawal(1, at("2027-05-04T16:45:00Z"));
  t.is(
    overlapping?.reason === "brownout" ? overlapping.window.end.toISOString() : undefined,
    "2027-05-04T18:30:00.000Z",
  );
  t.is(withdrawal(1, at("2027-05-04T18:30:00Z")), undefined, "the end is exclusive");
  t.is(withdrawal(2, at("2027-05-04T16:00:00Z")), undefined, "a version without a schedule is always offered");
});

test("on and after the sunset a version is withdrawn for good", (t) => {
  t.is(withdrawal(1, at("2027-06-29T23:59:59.999Z")), undefined);
  t.deepEqual(withdrawal(1, at("2027-06-30T00:00:00Z")), { reason: "sunset", since: at("2027-06-30T00:00:00Z") });
  t.deepEqual([...policy.withdrawn(at("2030-01-01T00:00:00Z")).keys()], [1]);
  t.deepEqual([...policy.withdrawn(at("2027-01-01T00:00:00Z")).keys()], []);
});

test("describeWithdrawal names the sunset date or the window", (t) => {
  t.is(
    describeWithdrawal(1, { reason: "sunset", since: at("2027-06-30T00:00:00Z") }),
    "version 1 was sunset on 2027-06-30T00:00:00.000Z and is no longer served",
  );
  const window = parseIntervals("2027-05-04T16:00:00Z/PT1H")[0]!;
  t.regex(
    describeWithdrawal(1, { reason: "brownout", window }),
    /browned out during 2027-05-04T16:00:00\.000Z\/2027-05-04T17:00:00\.000Z/,
  );
});

test("each version's facts: the declaration (status, deprecation, changes) and the schedule (sunset, brownouts) in one record", (t) => {
  t.deepEqual(policy.of(1), {
    version: 1,
    status: "deprecated",
    deprecatedAt: VERSIONS[1].deprecatedAt,
    sunset: at("2027-06-30T00:00:00Z"),
    brownouts: parseIntervals("2027-05-04T16:00:00Z/PT1H,2027-05-04T16:30:00Z/PT2H"),
    changes: VERSIONS[1].changes,
  });
  t.like(policy.of(2), { version: 2, status: "current", deprecatedAt: undefined, sunset: undefined, brownouts: [] });
  t.deepEqual(
    policy.all.map((f) => f.version),
    [2, 1],
    "newest first",
  );
  t.deepEqual(policy.deprecated, [1]);
  t.like(
    versionPolicy().of(1),
    { status: "deprecated", sunset: undefined, brownouts: [] },
    "no schedule: deprecated, never withdrawn",
  );
  t.deepEqual([...versionPolicy().withdrawn(at("2100-01-01T00:00:00Z")).keys()], []);
});

test("V1_BROWNOUTS is validated at boot, naming the variable; the schedule comes from V1_SUNSET and V1_BROWNOUTS", (t) => {
  const env = { SECRET_KEY_BASE: "s".repeat(48) };
  const error = t.throws(() => loadConfig({ ...env, V1_BROWNOUTS: "2027-05-04T16:00:00Z/P1M" }), {
    instanceOf: ConfigError,
  });
  t.regex(error?.message ?? "", /^invalid configuration: V1_BROWNOUTS expected start\/end/);
  const config = loadConfig({ ...env, V1_SUNSET: "2027-06-30", V1_BROWNOUTS: "2027-05-04T16:00:00Z/PT1H" });
  t.deepEqual(
    config.versions.of(1).brownouts.map((w) => w.label),
    ["2027-05-04T16:00:00.000Z/2027-05-04T17:00:00.000Z"],
  );
  t.deepEqual(loadConfig(env).versions.of(1).brownouts, [], "unset: no brownouts");
  const planned = config.versions.of(1);
  t.is(planned.sunset?.toISOString(), "2027-06-30T00:00:00.000Z");
  t.is(planned.brownouts.length, 1);
});

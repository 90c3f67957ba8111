/**
 * The version policy: everything there is to know about each API version as this process serves
 * it, in one place. What the code declares (lib/versions.ts: whether it is deprecated, since when,
 * what changed) and what the configuration says (its sunset and brownout windows: `V1_SUNSET`,
 * `V1_BROWNOUTS`) are merged once, by loadConfig, into `config.versions`; everyone who speaks of a
 * version's status, deprecation, sunset or brownouts (negotiation, `GET /versions`, the OpenAPI
 * documents, the socket upgrade, the dashboard) reads it there. Pure: asked with the current time
 * which versions are withdrawn.
 *
 *     const policy = versionPolicy({ 1: { sunset: new Date("2027-06-30T00:00:00Z"), brownouts: parseIntervals("2027-05-04T16:00:00Z/PT1H") } })
 *     policy.of(1)  // → { version: 1, status: "deprecated", deprecatedAt: 2026-01-01, sunset: 2027-06-30, brownouts: [one window], changes: […] }
 *     policy.withdrawn(new Date("2027-05-04T16:30:00Z"))
 *     // → Map { 1 => { reason: "brownout", window: {start, end, label: "2027-05-04T16:00:00.000Z/2027-05-04T17:00:00.000Z"} } }
 *
 * On and after its sunset a version is withdrawn for good; inside a brownout window before the
 * sunset it is withdrawn exactly the same way, until the window ends.
 */
import { API_VERSIONS, VERSIONS, type ApiVersion, type VersionChange, type VersionDeclaration } from "./versions.ts";

export interface TimeWindow {
  readonly start: Date;
  readonly end: Date;
  /** `start/end` in ISO 8601 (UTC): how problems and `GET /versions` name the window. */
  readonly label: string;
}

/** What the configuration says of a version: when it stops being served. */
export interface VersionSchedule {
  /** From this instant on, the version is no longer offered. */
  readonly sunset?: Date | undefined;
  /** Windows before the sunset in which it is served as if already sunset (rehearsals). */
  readonly brownouts?: readonly TimeWindow[] | undefined;
}

/** One version, as served: its declaration and its schedule together. */
export interface VersionFacts {
  readonly version: ApiVersion;
  /** `deprecated` once lib/versions.ts gives it a deprecation date; withdrawals are asked of the policy with a time. */
  readonly status: "current" | "deprecated";
  /** When it was deprecated (RFC 9745 `Deprecation`). */
  readonly deprecatedAt: Date | undefined;
  /** When it stops being served (RFC 8594 `Sunset`); undefined: not planned. */
  readonly sunset: Date | undefined;
  readonly brownouts: readonly TimeWindow[];
  /** What changed since the previous version (the first version: what it introduced). */
  readonly changes: readonly VersionChange[];
}

export type Withdrawal =
  { readonly reason: "sunset"; readonly since: Date } | { readonly reason: "brownout"; readonly window: TimeWindow };

export interface VersionPolicy {
  /** Every version, newest first (the order of `API_VERSIONS`). */
  readonly all: readonly VersionFacts[];
  /** The deprecated versions, newest first. */
  readonly deprecated: readonly ApiVersion[];
  of(version: ApiVersion): VersionFacts;
  /** Why `version` is not offered at `now`, or undefined when it is. */
  withdrawal(version: ApiVersion, now: Date): Withdrawal | undefined;
  /** Every version not offered at `now`, with why. */
  withdrawn(now: Date): ReadonlyMap<ApiVersion, Withdrawal>;
}

/**
 * The policy of the versions declared in lib/versions.ts with these schedules (a version without
 * one is offered until the code drops it).
 */
export function versionPolicy(schedules: Readonly<Partial<Record<ApiVersion, VersionSchedule>>> = {}): VersionPolicy {
  const facts = new Map<ApiVersion, VersionFacts>(
    API_VERSIONS.map((version) => {
      const declared: VersionDeclaration = VERSIONS[version];
      const schedule = schedules[version];
      return [
        version,
        Object.freeze({
          version,
          status: declared.deprecatedAt === undefined ? "current" : "deprecated",
          deprecatedAt: declared.deprecatedAt,
          sunset: schedule?.sunset,
          brownouts: Object.freeze([...(schedule?.brownouts ?? [])]),
          changes: declared.changes,
        }),
      ] as const;
    }),
  );
  const of = (version: ApiVersion): VersionFacts => facts.get(version)!;
  const withdrawal = (version: ApiVersion, now: Date): Withdrawal | undefined =>
    withdrawalAt(of(version), now.getTime());
  return Object.freeze({
    all: Object.freeze([...facts.values()]),
    deprecated: Object.freeze([...facts.values()].filter((f) => f.status === "deprecated").map((f) => f.version)),
    of,
    withdrawal,
    withdrawn(now: Date) {
      const result = new Map<ApiVersion, Withdrawal>();
      for (const version of API_VERSIONS) {
        const why = withdrawal(version, now);
        if (why !== undefined) result.set(version, why);
      }
      return result;
    },
  });
}

/** The versions withdrawn at an instant, and a short key naming that state (e.g. `1` or ``). */
export interface WithdrawnState {
  readonly withdrawn: ReadonlyMap<ApiVersion, Withdrawal>;
  readonly versions: ReadonlySet<ApiVersion>;
  readonly key: string;
}

/**
 * `policy.withdrawn` for a request path: the answer only changes at a sunset or a brownout's
 * start or end, so it is computed once per interval between those instants and reused inside it
 * (whichever way the clock moves).
 *
 *     const at = withdrawnTimeline(config.versions)
 *     at(clock.now()).withdrawn // the same object for every request until the next boundary
 */
export function withdrawnTimeline(policy: VersionPolicy): (now: Date) => WithdrawnState {
  const boundaries = [
    ...new Set(
      policy.all.flatMap((facts) => [
        ...(facts.sunset === undefined ? [] : [facts.sunset.getTime()]),
        ...facts.brownouts.flatMap((w) => [w.start.getTime(), w.end.getTime()]),
      ]),
    ),
  ].sort((a, b) => a - b);
  let from = Number.POSITIVE_INFINITY;
  let until = Number.NEGATIVE_INFINITY;
  let state: WithdrawnState | undefined;
  return (now) => {
    const t = now.getTime();
    if (state !== undefined && t >= from && t < until) return state;
    // Every comparison in `withdrawalAt` is `t >= boundary` or `t < boundary`: constant in [from, until).
    const next = boundaries.findIndex((b) => b > t);
    from =
      next === -1
        ? (boundaries[boundaries.length - 1] ?? Number.NEGATIVE_INFINITY)
        : next === 0
          ? Number.NEGATIVE_INFINITY
          : boundaries[next - 1]!;
    until = next === -1 ? Number.POSITIVE_INFINITY : boundaries[next]!;
    const withdrawn = policy.withdrawn(now);
    state = { withdrawn, versions: new Set(withdrawn.keys()), key: [...withdrawn.keys()].join(".") };
    return state;
  };
}

function withdrawalAt(facts: VersionFacts, t: number): Withdrawal | undefined {
  if (facts.sunset !== undefined && t >= facts.sunset.getTime()) return { reason: "sunset", since: facts.sunset };
  // Overlapping windows: the one that lasts longest decides when the version is back.
  let current: TimeWindow | undefined;
  for (const window of facts.brownouts) {
    if (t >= window.start.getTime() && t < window.end.getTime() && (current === undefined || window.end > current.end))
      current = window;
  }
  return current === undefined ? undefined : { reason: "brownout", window: current };
}

/** A sentence for a 410 detail or a 422: `version 1 was sunset on 2027-06-30T00:00:00.000Z`. */
export function describeWithdrawal(version: ApiVersion, why: Withdrawal): string {
  return why.reason === "sunset"
    ? `version ${version} was sunset on ${why.since.toISOString()} and is no longer served`
    : `version ${version} is browned out during ${why.window.label} (a rehearsal of its sunset); it is served again after ${why.window.end.toISOString()}`;
}

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;
// Days, weeks, hours, minutes, seconds: durations of fixed length (months and years are not).
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/**
 * Parses a comma-separated list of ISO 8601 time intervals, `start/end` or `start/duration`
 * (`2027-05-04T16:00:00Z/PT1H`), each instant with its offset. Throws an Error saying what was
 * expected; the empty string is the empty list.
 */
export function parseIntervals(text: string): TimeWindow[] {
  const entries = text
    .split(",")
    .map((e) => e.trim())
    .filter((e) => e !== "");
  return entries.map((entry) => {
    const [startText, endText, extra] = entry.split("/");
    const expected = `expected start/end or start/duration like 2027-05-04T16:00:00Z/PT1H (got ${JSON.stringify(entry)})`;
    if (startText === undefined || endText === undefined || extra !== undefined) throw new Error(expected);
    const start = instant(startText);
    if (start === undefined) throw new Error(`${expected}: the start must be a date-time with a time zone`);
    const end = endText.startsWith("P") ? after(start, endText) : instant(endText);
    if (end === undefined)
      throw new Error(
        `${expected}: the end must be a date-time with a time zone or a duration in weeks, days, hours, minutes or seconds`,
      );
    if (end <= start) throw new Error(`${expected}: the window must end after it starts`);
    return { start, end, label: `${start.toISOString()}/${end.toISOString()}` };
  });
}

function instant(text: string): Date | undefined {
  if (!DATE_TIME.test(text)) return undefined;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function after(start: Date, text: string): Date | undefined {
  const m = DURATION.exec(text);
  if (m === null || text === "P" || text.endsWith("T")) return undefined;
  const [w, d, h, min, s] = m.slice(1).map((part) => Number(part ?? 0)) as [number, number, number, number, number];
  const seconds = (((w * 7 + d) * 24 + h) * 60 + min) * 60 + s;
  return seconds > 0 ? new Date(start.getTime() + seconds * 1000) : undefined;
}

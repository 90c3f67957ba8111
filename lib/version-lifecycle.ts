/**
 * When versions stop being offered (pure): sunset dates and brownout windows, read from the
 * configuration once and asked about with the current time.
 *
 *     const windows = parseIntervals("2027-05-04T16:00:00Z/PT1H")       // one one-hour window
 *     const schedule = { 1: { sunset: new Date("2027-06-30T00:00:00Z"), brownouts: windows } }
 *     withdrawnVersions(schedule, new Date("2027-05-04T16:30:00Z"))
 *     // → Map { 1 => { reason: "brownout", window: {start, end, label: "2027-05-04T16:00:00.000Z/2027-05-04T17:00:00.000Z"} } }
 *
 * On and after its sunset a version is withdrawn for good; inside a brownout window before the
 * sunset it is withdrawn exactly the same way, until the window ends.
 */
import { API_VERSIONS, type ApiVersion } from "./versions.ts";

export interface TimeWindow {
  readonly start: Date;
  readonly end: Date;
  /** `start/end` in ISO 8601 (UTC): how problems and `GET /versions` name the window. */
  readonly label: string;
}

export interface VersionSchedule {
  /** From this instant on, the version is no longer offered. */
  readonly sunset?: Date | undefined;
  readonly brownouts: readonly TimeWindow[];
}

/** The schedule of each version that has one (versions without are always offered). */
export type Schedule = Readonly<Partial<Record<ApiVersion, VersionSchedule>>>;

export type Withdrawal = { readonly reason: "sunset"; readonly since: Date } | { readonly reason: "brownout"; readonly window: TimeWindow };

/** Why `version` is not offered at `now`, or undefined when it is. */
export function withdrawal(schedule: Schedule, version: ApiVersion, now: Date): Withdrawal | undefined {
  const entry = schedule[version];
  if (entry === undefined) return undefined;
  const t = now.getTime();
  if (entry.sunset !== undefined && t >= entry.sunset.getTime()) return { reason: "sunset", since: entry.sunset };
  // Overlapping windows: the one that lasts longest decides when the version is back.
  let current: TimeWindow | undefined;
  for (const window of entry.brownouts) {
    if (t >= window.start.getTime() && t < window.end.getTime() && (current === undefined || window.end > current.end)) current = window;
  }
  return current === undefined ? undefined : { reason: "brownout", window: current };
}

/** Every version not offered at `now`, with why. */
export function withdrawnVersions(schedule: Schedule, now: Date): ReadonlyMap<ApiVersion, Withdrawal> {
  const result = new Map<ApiVersion, Withdrawal>();
  for (const version of API_VERSIONS) {
    const why = withdrawal(schedule, version, now);
    if (why !== undefined) result.set(version, why);
  }
  return result;
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
  const entries = text.split(",").map((e) => e.trim()).filter((e) => e !== "");
  return entries.map((entry) => {
    const [startText, endText, extra] = entry.split("/");
    const expected = `expected start/end or start/duration like 2027-05-04T16:00:00Z/PT1H (got ${JSON.stringify(entry)})`;
    if (startText === undefined || endText === undefined || extra !== undefined) throw new Error(expected);
    const start = instant(startText);
    if (start === undefined) throw new Error(`${expected}: the start must be a date-time with a time zone`);
    const end = endText.startsWith("P") ? after(start, endText) : instant(endText);
    if (end === undefined) throw new Error(`${expected}: the end must be a date-time with a time zone or a duration in weeks, days, hours, minutes or seconds`);
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

/** The schedule the configuration declares: version 1's `V1_SUNSET` and `V1_BROWNOUTS`. */
export function configuredSchedule(config: { readonly v1Sunset: Date; readonly v1Brownouts: readonly TimeWindow[] }): Schedule {
  return { 1: { sunset: config.v1Sunset, brownouts: config.v1Brownouts } };
}

/** The versions withdrawn at an instant, and a short key naming that state (e.g. `1` or ``). */
export interface WithdrawnState {
  readonly withdrawn: ReadonlyMap<ApiVersion, Withdrawal>;
  readonly versions: ReadonlySet<ApiVersion>;
  readonly key: string;
}

/**
 * `withdrawnVersions` for a request path: the state only changes at a sunset or a brownout's
 * start or end, so it is computed once per interval between those instants and reused inside it
 * (whichever way the clock moves).
 *
 *     const at = withdrawnTimeline(schedule)
 *     at(clock.now()).withdrawn // the same object for every request until the next boundary
 */
export function withdrawnTimeline(schedule: Schedule): (now: Date) => WithdrawnState {
  const boundaries = [
    ...new Set(
      API_VERSIONS.flatMap((v) => {
        const entry = schedule[v];
        if (entry === undefined) return [];
        return [...(entry.sunset === undefined ? [] : [entry.sunset.getTime()]), ...entry.brownouts.flatMap((w) => [w.start.getTime(), w.end.getTime()])];
      }),
    ),
  ].sort((a, b) => a - b);
  let from = Number.POSITIVE_INFINITY;
  let until = Number.NEGATIVE_INFINITY;
  let state: WithdrawnState | undefined;
  return (now) => {
    const t = now.getTime();
    if (state !== undefined && t >= from && t < until) return state;
    // Every comparison in `withdrawal` is `t >= boundary` or `t < boundary`: constant in [from, until).
    const next = boundaries.findIndex((b) => b > t);
    from = next === -1 ? (boundaries[boundaries.length - 1] ?? Number.NEGATIVE_INFINITY) : next === 0 ? Number.NEGATIVE_INFINITY : boundaries[next - 1]!;
    until = next === -1 ? Number.POSITIVE_INFINITY : boundaries[next]!;
    const withdrawn = withdrawnVersions(schedule, now);
    state = { withdrawn, versions: new Set(withdrawn.keys()), key: [...withdrawn.keys()].join(".") };
    return state;
  };
}

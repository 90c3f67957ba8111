/**
 * The wall clock, as a dependency: what decides whether a version has reached its sunset or is
 * in a brownout. Tests inject one they move by hand instead of sleeping.
 *
 *     const deps = await createDeps(config, { clock: { now: () => new Date("2027-07-01T00:00:00Z") } })
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

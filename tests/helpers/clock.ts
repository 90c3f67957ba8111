/**
 * A clock a test moves by hand, injected through deps: sunsets and brownouts are tested by
 * setting the time, never by sleeping.
 *
 *     const clock = manualClock("2027-05-04T15:59:59Z")
 *     const app = await startTestServer({ V1_BROWNOUTS: "2027-05-04T16:00:00Z/PT1H" }, { clock })
 *     clock.set("2027-05-04T16:30:00Z")
 */
import type { Clock } from "../../lib/clock.ts";

export interface ManualClock extends Clock {
  set(iso: string): void;
}

export function manualClock(iso: string): ManualClock {
  let now = new Date(iso);
  return {
    now: () => new Date(now.getTime()),
    set(next) {
      now = new Date(next);
    },
  };
}

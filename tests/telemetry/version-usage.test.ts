/**
 * Top callers of deprecated versions (lib/telemetry/version-usage.ts), fed through a real
 * telemetry emitter, with a clock the test moves: counts per window, the window sliding, other
 * versions ignored, anonymous requests counted apart, memory bounded by the capacity.
 */
import test from "ava";
import { createTelemetry } from "../../lib/telemetry/index.ts";
import { createVersionUsage } from "../../lib/telemetry/version-usage.ts";
import type { ApiVersion } from "../../lib/versions.ts";

function setup(options: { capacity?: number } = {}) {
  let now = 1_000_000;
  const telemetry = createTelemetry();
  const usage = createVersionUsage({ versions: [1], bucketMs: 1000, buckets: 3, now: () => now, ...options });
  telemetry.attach(usage.handle);
  const request = (version: ApiVersion | undefined, userId: number | undefined, times = 1) => {
    for (let i = 0; i < times; i++) {
      telemetry.emit(
        "http.request.stop",
        { duration_ms: 1 },
        {
          request_id: "r",
          method: "GET",
          path: "/users",
          route: "/users",
          status: 200,
          api_version: version,
          user_id: userId,
        },
      );
    }
  };
  return { usage, request, advance: (ms: number) => (now += ms) };
}

test("lists the heaviest callers of a deprecated version with their requests in the window", (t) => {
  const { usage, request } = setup();
  request(1, 7, 5);
  request(1, 9, 2);
  request(1, undefined, 3);
  request(2, 7, 50); // not deprecated: not counted
  request(undefined, 7, 4); // no version negotiated
  t.deepEqual(usage.top(1, 10), {
    version: 1,
    window_s: 3,
    requests: 10,
    anonymous: 3,
    callers: [
      { user_id: 7, requests: 5, error: 0 },
      { user_id: 9, requests: 2, error: 0 },
    ],
  });
  t.deepEqual(usage.top(1, 1).callers, [{ user_id: 7, requests: 5, error: 0 }]);
  t.deepEqual(usage.top(2, 10).callers, [], "a version not watched has no callers");
});

test("a request answered 410 for a withdrawn version counts as a call of that version, per user", (t) => {
  const telemetry = createTelemetry();
  const usage = createVersionUsage({ versions: [1] });
  telemetry.attach(usage.handle);
  const gone = (userId: number | undefined) =>
    telemetry.emit(
      "http.request.stop",
      { duration_ms: 1 },
      {
        request_id: "r",
        method: "GET",
        path: "/v1/rooms",
        route: undefined,
        status: 410,
        api_version: undefined,
        gone_version: 1,
        user_id: userId,
      },
    );
  gone(7);
  gone(7);
  gone(undefined);
  t.like(usage.top(1, 10), { requests: 3, anonymous: 1, callers: [{ user_id: 7, requests: 2, error: 0 }] });
});

test("the window slides: requests older than it stop counting", (t) => {
  const { usage, request, advance } = setup();
  request(1, 7, 5);
  advance(1000);
  request(1, 7, 1);
  request(1, 8, 2);
  advance(1000);
  t.deepEqual(
    usage.top(1, 10).callers.map((c) => [c.user_id, c.requests]),
    [
      [7, 6],
      [8, 2],
    ],
  );
  advance(1000); // the first slice leaves the 3 s window
  t.deepEqual(
    usage.top(1, 10).callers.map((c) => [c.user_id, c.requests]),
    [
      [8, 2],
      [7, 1],
    ],
  );
  advance(10_000); // a lap and more later, every slice is stale even where its ring cell was not reused
  t.deepEqual(usage.top(1, 10), { version: 1, window_s: 3, requests: 0, anonymous: 0, callers: [] });
});

test("memory stays bounded however many users call: at most capacity callers per slice", (t) => {
  const { usage, request } = setup({ capacity: 4 });
  request(1, 1, 2000); // the heavy caller: over N / capacity = 6998 / 4 requests, so it is sure to be kept
  for (let user = 2; user < 5000; user++) request(1, user);
  const top = usage.top(1, 100);
  t.is(top.callers.length, 4);
  t.is(top.callers[0]!.user_id, 1, "the heavy caller survives the churn");
  t.true(top.callers[0]!.requests >= 2000);
  t.is(top.requests, 2000 + 4998);
});

/**
 * The load generator against a Phoenix server that misbehaves on purpose (./phoenix-server.ts):
 * every kind of fault it is meant to expose must show in the result, counted exactly where the
 * fault is countable.
 */
import test from "ava";
import { load, loadOnSchedule, startPhoenixServer } from "./helpers.ts";

const SUBSCRIBERS = 40;
const fanout = (url: string, extra: string[] = []) => [
  "fanout",
  "--url",
  url,
  "--topic",
  "room:1",
  "--subscribers",
  String(SUBSCRIBERS),
  "--rate",
  "50",
  "--duration",
  "2",
  "--drain",
  "2",
  ...extra,
];

test.serial("a well-behaved server: every delivery received once, in order, nothing missing", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  const r = await load(fanout(server.url, ["--workers", "2"]));
  t.true(r.messages.published >= 90, `published ${r.messages.published}`);
  t.is(r.messages.acknowledged, r.messages.published);
  t.is(r.connections.joined, SUBSCRIBERS + 1);
  t.is(r.deliveries.expected, r.messages.published * SUBSCRIBERS);
  t.is(r.deliveries.received, r.deliveries.expected);
  t.is(r.deliveries.missing, 0);
  t.is(r.deliveries.duplicates, 0);
  t.is(r.deliveries.out_of_order, 0);
  t.is(r.deliveries.completeness, 1);
  t.is(r.latency_ms.count, r.deliveries.received);
  t.deepEqual(r.errors["connect"], {});
});

test.serial("dropped broadcasts are reported as missing, exactly", async (t) => {
  const server = await startPhoenixServer({ dropEvery: 10 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  const dropped = Math.floor(r.messages.published / 10);
  t.true(dropped >= 9);
  t.is(r.deliveries.missing, dropped * SUBSCRIBERS);
  t.is(r.deliveries.received, (r.messages.published - dropped) * SUBSCRIBERS);
  t.is(r.deliveries.completeness, (r.messages.published - dropped) / r.messages.published);
});

test.serial("duplicated broadcasts are reported as duplicates and not counted as deliveries", async (t) => {
  const server = await startPhoenixServer({ duplicateEvery: 5 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.is(r.deliveries.duplicates, Math.floor(r.messages.published / 5) * SUBSCRIBERS);
  t.is(r.deliveries.received, r.deliveries.expected);
  t.is(r.deliveries.missing, 0);
});

test.serial("reordered broadcasts are reported as out of order", async (t) => {
  const server = await startPhoenixServer({ reorderEvery: 4 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  const held = Math.floor(r.messages.published / 4);
  // The last held message is lost when publishing ends right after it.
  const released = r.messages.published % 4 === 0 ? held - 1 : held;
  t.is(r.deliveries.out_of_order, released * SUBSCRIBERS);
  t.is(r.deliveries.missing, (held - released) * SUBSCRIBERS);
});

test.serial("a 200 ms delay shows in every percentile", async (t) => {
  const server = await startPhoenixServer({ delayMs: 200 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.true(r.latency_ms.p50 >= 200, `p50 ${r.latency_ms.p50}`);
  t.true(r.deliveries.completeness === 1);
});

test.serial(
  "a 1 s stall of the server in a 10 s run shows in p99 (latency from the scheduled send time)",
  async (t) => {
    const server = await startPhoenixServer({ stallAfterMs: 4000, stallMs: 1000 });
    t.teardown(server.stop);
    const r = await load([
      "fanout",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--subscribers",
      "20",
      "--rate",
      "50",
      "--duration",
      "10",
      "--drain",
      "3",
    ]);
    // Messages due during the stall wait up to 1 s: a tenth of all messages, so the top 1 % waited ≥ ~0.9 s.
    t.true(r.latency_ms.p99 >= 800, `p99 ${r.latency_ms.p99} ms`);
    t.true(r.latency_ms.max >= 900, `max ${r.latency_ms.max} ms`);
    t.true(r.reply_ms.max >= 900, `push→reply max ${r.reply_ms.max} ms`);
    t.is(r.deliveries.completeness, 1);
    // The publisher kept its schedule through the stall (open loop): nothing was held back.
    t.true(r.messages.published >= 495, `published ${r.messages.published}`);
  },
);

test.serial("refused upgrades are counted by status", async (t) => {
  const server = await startPhoenixServer({ refuseUpgrades: 2 });
  t.teardown(server.stop);
  const r = await load(["connect", "--url", server.url, "--topic", "room:1", "--subscribers", "40", "--duration", "1"]);
  t.is(r.connections.attempted, 40);
  t.is(r.errors["connect"]?.["upgrade_403"], 20);
  t.is(r.connections.failed, 20);
  t.is(r.connections.joined, 20);
});

test.serial("churn: sockets leave and rejoin while the steady subscribers miss nothing", async (t) => {
  const r = await loadOnSchedule(t, async () => {
    const server = await startPhoenixServer();
    t.teardown(server.stop);
    return load([
      "churn",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--subscribers",
      "30",
      "--churners",
      "10",
      "--churn-rate",
      "20",
      "--rate",
      "40",
      "--duration",
      "2",
    ]);
  });
  t.true(r.churn!.leaves >= 20, `leaves ${r.churn!.leaves}`);
  t.true(r.churn!.rejoins >= r.churn!.leaves - 10);
  t.is(r.churn!.rejoin_ms.count, r.churn!.rejoins);
  t.is(r.deliveries.expected, r.messages.published * 30);
  t.is(r.deliveries.completeness, 1);
});

test.serial("two runs on one topic (two client machines) each account for their own messages only", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  const [a, b] = await Promise.all([load(fanout(server.url)), load(fanout(server.url))]);
  for (const r of [a!, b!]) {
    t.is(r.deliveries.received, r.deliveries.expected);
    t.is(r.deliveries.duplicates, 0);
    t.is(r.deliveries.foreign, 0);
  }
  t.not(a!.run_id, b!.run_id);
});

test.serial("sockets the server closes are counted, by close code, and their deliveries missing", async (t) => {
  const server = await startPhoenixServer({ closeAfter: 10, closeCode: 4503 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.is(r.connections.closed, SUBSCRIBERS);
  t.is(r.errors["close"]?.["4503"], SUBSCRIBERS);
  // Nothing after the 10th message reached a subscriber (a few of the first ten may still have been in flight).
  t.true(r.deliveries.received <= 10 * SUBSCRIBERS, `received ${r.deliveries.received}`);
  t.is(r.deliveries.missing, r.deliveries.expected - r.deliveries.received);
  t.true(r.deliveries.completeness < 0.2);
});

test.serial(
  "subscribers that never joined miss their share: expected = published × subscribers asked for (ws client, no 1006 counted)",
  async (t) => {
    // Joins 7, 14, 21, 28 and 35 are refused; the publisher is the 41st socket (ramped, so it joins last).
    const server = await startPhoenixServer({ refuseJoinEvery: 7 });
    t.teardown(server.stop);
    const r = await load(fanout(server.url, ["--client", "ws", "--ramp", "100"]));
    t.is(r.connections.failed, 5);
    t.is(r.errors["join"]?.["refused_on_purpose"], 5);
    t.deepEqual(r.errors["close"], {}, "a refused join is not also a 1006 close");
    t.is(r.by_url[0]!.subscribers, SUBSCRIBERS - 5);
    t.true(r.messages.published >= 90, `published ${r.messages.published}`);
    t.is(r.deliveries.expected, r.messages.published * SUBSCRIBERS);
    t.is(r.deliveries.received, r.messages.published * (SUBSCRIBERS - 5));
    t.is(r.deliveries.missing, r.messages.published * 5);
    t.is(r.deliveries.completeness, (SUBSCRIBERS - 5) / SUBSCRIBERS);
  },
);

for (const client of ["ws", "raw"]) {
  test.serial(`--client ${client}: a refused or timed-out join is counted once, under errors.join`, async (t) => {
    // Joins 4, 8 and 12 are never answered, 3, 6 and 9 are refused.
    const server = await startPhoenixServer({ refuseJoinEvery: 3, ignoreJoinEvery: 4 });
    t.teardown(server.stop);
    const r = await load([
      "connect",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--subscribers",
      "12",
      "--duration",
      "0",
      "--connect-timeout",
      "1",
      "--client",
      client,
    ]);
    t.deepEqual(r.errors["join"], { refused_on_purpose: 3, timeout: 3 });
    t.deepEqual(r.errors["close"], {});
    t.deepEqual(r.errors["connect"], {});
    t.like(r.connections, { attempted: 12, connected: 12, joined: 6, failed: 6, closed: 0 });
  });
}

test.serial("a publisher closed mid-run: the messages it could not send make the run invalid", async (t) => {
  const r = await loadOnSchedule(t, async () => {
    const server = await startPhoenixServer({ closePusherAfter: 10 });
    t.teardown(server.stop);
    return load(fanout(server.url));
  });
  t.false(r.valid);
  t.is(r.messages.published, 10, "nothing is sent on a closed socket");
  t.is(r.messages.published + r.messages.unsent, 100, "--rate 50 for 2 s: 100 messages were due");
  t.true(
    r.invalid_reasons.includes(
      `${r.messages.unsent} message(s) due were never sent: a publisher's socket was not joined (closed, left or refused; see errors.close and errors.channel)`,
    ),
    r.invalid_reasons.join("; "),
  );
  t.deepEqual(r.errors["close"], { "4000": 1 });
  t.is(r.connections.closed, 1);
  t.is(r.deliveries.expected, 10 * SUBSCRIBERS);
});

test.serial("the drain waits for late push replies", async (t) => {
  // Broadcasts leave at once, replies 2.5 s late: every delivery is in long before the last reply.
  const server = await startPhoenixServer({ replyDelayMs: 2500 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url));
  t.is(r.deliveries.completeness, 1);
  t.is(r.messages.acknowledged, r.messages.published);
  t.is(r.messages.unacknowledged, 0);
  t.true(r.reply_ms.p50 >= 2500, `push→reply p50 ${r.reply_ms.p50} ms`);
  t.is(r.reply_ms.count, r.messages.published);
});

test.serial("pushes never answered are reported apart from deliveries (late and lost told apart)", async (t) => {
  const server = await startPhoenixServer({ replyDelayMs: 60_000 });
  t.teardown(server.stop);
  const r = await load(fanout(server.url, ["--drain", "1"]));
  t.is(r.deliveries.missing, 0, "every broadcast arrived");
  t.is(r.messages.acknowledged, 0);
  t.is(r.messages.unacknowledged, r.messages.published);
  t.true(
    r.warnings.includes(`${r.messages.published} push(es) had no reply by the end of the drain`),
    r.warnings.join("; "),
  );
});

test.serial(
  "a blocked publishing worker catches up, and latency is from the scheduled send time (coordinated omission)",
  async (t) => {
    const server = await startPhoenixServer();
    t.teardown(server.stop);
    let pids: number[] = [];
    let stopped = false;
    const resume = () => {
      try {
        process.kill(pids[0]!, "SIGCONT");
      } catch {
        // already gone
      }
    };
    t.teardown(resume);
    // Worker 1 runs the publisher (and half the subscribers); it is frozen for 1 s while publishing.
    const r = await load(
      [
        "fanout",
        "--url",
        server.url,
        "--topic",
        "room:1",
        "--subscribers",
        "20",
        "--rate",
        "50",
        "--duration",
        "5",
        "--drain",
        "2",
        "--workers",
        "2",
      ],
      false,
      {
        onWorkers: (list) => (pids = list),
        onProgress: (_point, _totals, phase) => {
          if (phase !== "publish" || stopped) return;
          stopped = true;
          setTimeout(() => {
            process.kill(pids[0]!, "SIGSTOP");
            setTimeout(resume, 1000);
          }, 500);
        },
      },
    );
    t.true(stopped);
    // Every message due while the worker was frozen was sent when it woke (none skipped)…
    t.is(r.messages.published, 250);
    t.is(r.messages.unsent, 0);
    t.is(r.deliveries.completeness, 1);
    // …and measured from when it was due: the burst sent on waking carries up to 1 s of latency.
    t.true(r.latency_ms.p99 >= 800, `p99 ${r.latency_ms.p99} ms`);
    t.true(r.latency_ms.max >= 900, `max ${r.latency_ms.max} ms`);
    t.true(r.reply_ms.max >= 900, `push→reply max ${r.reply_ms.max} ms`);
  },
);

test.serial("an event loop lagging past --max-lag-ms makes the run invalid, naming the lag", async (t) => {
  const server = await startPhoenixServer();
  t.teardown(server.stop);
  // No loop runs with zero lag; the CPU bound is lifted so that the lag alone decides.
  const r = await load(
    [
      "connect",
      "--url",
      server.url,
      "--topic",
      "room:1",
      "--subscribers",
      "10",
      "--duration",
      "2",
      "--max-client-cpu",
      "2",
      "--max-lag-ms",
      "0",
    ],
    true,
  );
  t.false(r.valid);
  t.is(r.invalid_reasons.length, 1, r.invalid_reasons.join("; "));
  t.regex(
    r.invalid_reasons[0]!,
    /^client worker 1's event loop lagged \d+ ms \(p99 over 1 s\) past the bound of 0 ms$/,
  );
  t.is(r.connections.joined, 10);
});

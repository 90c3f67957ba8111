/**
 * What the benchmarks' command lines share: positive integer options, `--node-flags` (bench:http
 * too), and the hard stop that bounds a run whatever happens (`--max-seconds`).
 *
 *     const ROUNDS = positiveInt("rounds", flags.rounds, 3)
 *     const hardStop = stopAfter("bench:ws", MAX_SECONDS, () => cleanUp())
 *     …
 *     clearTimeout(hardStop)
 */

/** `value` as a positive integer, `fallback` when absent; a clear error naming `--<name>` otherwise. */
export function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} expects a positive integer, got ${value}`);
  return n;
}

/**
 * `--node-flags="--max-semi-space-size=64 …"` (the `=` form, since the value starts with a dash):
 * flags for node itself, given to every server a benchmark starts, Hypercast and its references
 * alike, so that none is tuned and another not. None by default (V8's defaults, as the README's
 * production command runs).
 */
export function nodeFlags(value: string | undefined): string[] {
  const list = (value ?? "").split(/\s+/).filter((flag) => flag !== "");
  const bad = list.find((flag) => !/^--[a-z][a-z0-9-]*(=\S+)?$/.test(flag));
  if (bad !== undefined)
    throw new Error(`--node-flags expects node flags such as --max-semi-space-size=64, got ${bad}`);
  return list;
}

/** Says which node flags the servers ran with, for a run's header. */
export function describeNodeFlags(list: readonly string[]): string {
  return list.length === 0 ? "V8's defaults for every server" : `${list.join(" ")} for every server`;
}

/**
 * After `seconds`, says so on stderr, runs `cleanUp` and exits 1. Unref'd: a run that ends first
 * is not held open by it.
 */
export function stopAfter(benchmark: string, seconds: number, cleanUp: () => Promise<unknown>): NodeJS.Timeout {
  const timer = setTimeout(() => {
    console.error(`${benchmark} exceeded --max-seconds ${seconds}; stopping`);
    void cleanUp()
      .catch(() => undefined)
      .finally(() => process.exit(1));
  }, seconds * 1000);
  timer.unref();
  return timer;
}

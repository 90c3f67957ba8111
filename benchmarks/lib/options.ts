/**
 * What every socket benchmark's command line shares: positive integer options, and the hard stop
 * that bounds a run whatever happens (`--max-seconds`).
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

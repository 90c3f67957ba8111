/**
 * What the benchmarks' command lines share: reading them (`--help`, and exit 2 with the usage for
 * a flag that is unknown, lacks its value or has a bad one), positive integer options,
 * `--node-flags`, and the hard stop that bounds a run whatever happens (`--max-seconds`).
 *
 *     const { values: flags, check } = commandLine("bench:ws", "npm run bench:ws -- [--rounds N]", { rounds: { type: "string" } })
 *     const ROUNDS = check(() => positiveInt("rounds", flags.rounds, 3))
 *     const hardStop = stopAfter("bench:ws", MAX_SECONDS, () => cleanUp())
 *     …
 *     clearTimeout(hardStop)
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

type OptionsConfig = NonNullable<ParseArgsConfig["options"]>;
const HELP = { help: { type: "boolean", short: "h" } } as const;

/** What `parseArgs` reads for `options` (and `--help`). */
type Values<O extends OptionsConfig> = ReturnType<typeof parseArgs<{ options: O & typeof HELP }>>["values"];

export interface CommandLine<V> {
  values: V;
  /** Says what is wrong and how the command is used, on stderr, and exits 2. */
  usage(message: string): never;
  /** `read()`, or `usage` with the message of what it threw (`positiveInt`, `nodeFlags`). */
  check<T>(read: () => T): T;
}

/**
 * A benchmark's flags, read strictly by node's `parseArgs`. `--help` (`-h`) prints `synopsis` on
 * stdout and exits 0; an unknown flag, a positional argument or a flag without its value exits 2
 * through `usage`, as every value the benchmark rejects should (through `check` or `usage`): a bad
 * command line gets one line saying what is wrong and the synopsis, never a stack trace.
 */
export function commandLine<const O extends OptionsConfig>(
  benchmark: string,
  synopsis: string,
  options: O,
): CommandLine<Values<O>> {
  const usage = (message: string): never => {
    console.error(`${benchmark}: ${message}\nusage: ${synopsis}`);
    process.exit(2);
  };
  const check = <T>(read: () => T): T => {
    try {
      return read();
    } catch (error) {
      return usage((error as Error).message);
    }
  };
  let values: Values<O>;
  try {
    ({ values } = parseArgs({ options: { ...options, ...HELP } }));
  } catch (error) {
    // node's words, less its advice on passing a positional argument that starts with a dash: none takes any.
    return usage((error as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
  if ((values as { help?: boolean }).help === true) {
    console.log(`usage: ${synopsis}`);
    process.exit(0);
  }
  return { values, usage, check };
}

/**
 * Whether `url` names a PostgreSQL on this machine (127.x, localhost, [::1]): the benchmarks that
 * create databases or read their backends' CPU from /proc accept no other.
 */
export function isLoopbackPostgres(url: string): boolean {
  return /^postgres(ql)?:\/\/[^/]*(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//.test(url);
}

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

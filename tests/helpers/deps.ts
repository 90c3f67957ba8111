/**
 * Real dependencies for a test file: on PostgreSQL (when DATABASE_URL is set) a schema of its
 * own, created and migrated here and dropped afterwards; otherwise an in-memory PGlite.
 */
import { randomBytes } from "node:crypto";
import { loadConfig, type Config } from "../../lib/config.ts";
import { closeDeps, createDeps, type Deps } from "../../lib/deps.ts";
import type { Clock } from "../../lib/clock.ts";
import type { DestinationStream } from "pino";
import type { Logger } from "../../lib/telemetry/logger.ts";

/**
 * The environment every test server is configured from, in-process (`testConfig`) or as a child
 * process (the cluster harness passes it to `serve`): the one way tests build configuration.
 */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const databaseUrl = process.env["DATABASE_URL"];
  return {
    NODE_ENV: "test",
    LOG_LEVEL: "silent",
    SECRET_KEY_BASE: randomBytes(32).toString("hex"),
    // Cheap hashing (scrypt N=2^10) for the many tests that only log in on the way to something else.
    // A test of login limits or login timing must set PASSWORD_HASH_COST to production's 17
    // (README "Tests and CI"): at cost 10 a hash is over before the next attempt arrives, so a limit
    // counted only after the password check looks right, while at 17 30 concurrent wrong logins
    // against a limit of 3 all got through to a 401.
    PASSWORD_HASH_COST: "10",
    PORT: "0",
    SOCKET_PORT: "0",
    ...(databaseUrl === undefined ? {} : { DATABASE_URL: databaseUrl }),
    // Every test request comes from 127.0.0.1: per-address limits that a real client population
    // spreads over many addresses are out of the way, except in the files that test them.
    SIGNUPS_PER_ADDRESS: "100000",
    ANONYMOUS_RATE_LIMIT: "100000",
    PASSWORD_HASH_PER_ADDRESS: "64",
    PASSWORD_HASH_QUEUE: "1000",
    ...overrides,
  };
}

/** A validated Config from `testEnv(overrides)`. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}

export interface TestDeps extends Deps {
  /** Closes the connections and drops the test schema. */
  dispose(): Promise<void>;
}

export interface TestDepsOptions {
  /** A logger of the test's own, e.g. one writing into an array (see createLogger). */
  logger?: Logger;
  /** A clock of the test's own (see tests/helpers/clock.ts). */
  clock?: Clock;
  /** Where the logger createDeps builds writes (so its tracing fields are in the lines). */
  logDestination?: DestinationStream;
  /** The in-process presence's coalescing window (see DepsOptions). */
  presenceWindowMs?: number;
}

export async function createTestDeps(config: Config = testConfig(), options: TestDepsOptions = {}): Promise<TestDeps> {
  const schema = config.databaseUrl === undefined ? undefined : `test_${randomBytes(6).toString("hex")}`;
  const deps = await createDeps(config, {
    schema,
    inMemory: true,
    migrate: true,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
    ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
    ...(options.presenceWindowMs === undefined ? {} : { presenceWindowMs: options.presenceWindowMs }),
  });
  return {
    ...deps,
    async dispose() {
      if (schema !== undefined) await deps.db.raw("drop schema if exists ?? cascade", [schema]);
      await closeDeps(deps);
    },
  };
}

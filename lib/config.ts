/**
 * Configuration: read from the environment once at boot, validated, typed and frozen.
 * A bad value stops the boot with a message naming the variable; no secret has a default.
 *
 * Every variable is one row of `SETTINGS` (lib/settings.ts): its schema, its default, where its
 * value lands and its README line. The env schema (ajv checks every row at once), the types and the
 * mapping are derived here from the rows; what involves several variables (the secret, tracing,
 * the version policy, the cluster's lease) is the short list of rules in `loadConfig`.
 * Validation writes nothing: the development secret is `serve`'s (lib/bin/development-secret.ts).
 *
 *     const config = loadConfig(process.env)
 *     config.port            // 4000 (PORT)
 *     config.cluster.leaseMs // 15000 (CLUSTER_LEASE_MS)
 */
import { Ajv } from "ajv";
import { SETTINGS, type OtlpProtocol, type Setting } from "./settings.ts";
import { versionPolicy, type VersionPolicy } from "./version-policy.ts";

type Settings = typeof SETTINGS;
type Name = keyof Settings;

/** What ajv hands over for a setting: its type, or `undefined` when unset without a default. */
type Checked<S> =
  | (S extends { enum: readonly (infer W)[] } ? W : S extends { type: "integer" } ? number : string)
  | (S extends { default: unknown } ? never : undefined);
/** What a setting is in `Config`: what its `parse` returns, else the checked value. */
type Value<S> = S extends { parse: (value: never) => infer T } ? T : Checked<S>;
/** The settings' values by variable name: what the rules of loadConfig read. */
type Values = { readonly [N in Name]: Value<Settings[N]> };
type Target<N extends Name> = Settings[N] extends { to: infer T extends string } ? T : never;
// Distributive over `T`, so a row without `to` (never) lands nowhere.
type TopField<T> = T extends `${string}.${string}` ? never : T;
type GroupOf<T> = T extends `${infer G}.${string}` ? G : never;
type FieldIn<T, G extends string> = T extends `${G}.${infer F}` ? F : never;
type Fields = { readonly [N in Name as TopField<Target<N>>]: Value<Settings[N]> };
type Groups = {
  readonly [G in GroupOf<{ [N in Name]: Target<N> }[Name]>]: {
    readonly [N in Name as FieldIn<Target<N>, G>]: Value<Settings[N]>;
  };
};

// Each `parse` must accept what ajv hands over for its row (its type; `undefined` too without a
// default): when one does not, the next line fails to compile, naming the variable.
type MisfitParser = {
  [N in Name]: Settings[N] extends { parse: (value: infer P) => unknown }
    ? [Checked<Settings[N]>] extends [P]
      ? never
      : N
    : never;
}[Name];
const noMisfitParser: [MisfitParser] extends [never] ? true : MisfitParser = true;
void noMisfitParser;

/** The configuration: one field per row of `SETTINGS` (`cluster.*` grouped), and what the rules derive from several rows. */
export interface Config extends Fields, Groups {
  /** SECRET_KEY_BASE, or the development secret `serve` keeps under DATA_DIR. */
  readonly secretKeyBase: string;
  /** Set when an OTLP endpoint is: export traces there (README "Tracing"). Unset: no tracing code is loaded. */
  readonly tracing: TracingConfig | undefined;
  /** Each version's status, deprecation, sunset (`V1_SUNSET`), brownouts (`V1_BROWNOUTS`) and changes. */
  readonly versions: VersionPolicy;
}

export type NodeEnv = Config["nodeEnv"];
export type LogLevel = Config["logLevel"];
export type ClusterTimings = Config["cluster"];

export interface TracingConfig {
  /** Where spans are POSTed: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, or OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces`. */
  readonly url: string;
  readonly protocol: OtlpProtocol;
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface LoadOptions {
  /**
   * Where SECRET_KEY_BASE comes from when it is unset outside production: `serve` and `migrate`
   * pass `developmentSecret` (lib/bin/development-secret.ts), which keeps one under DATA_DIR.
   * Without it an unset SECRET_KEY_BASE stops the boot.
   */
  developmentSecret?: (dataDir: string) => string;
}

const ROWS = Object.entries(SETTINGS) as [Name, Setting][];
const KEYWORDS = ["type", "enum", "minimum", "maximum", "minLength", "pattern", "default"] as const;
const validateEnv = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true }).compile({
  type: "object",
  properties: Object.fromEntries(
    ROWS.map(([name, setting]) => [
      name,
      Object.fromEntries(KEYWORDS.flatMap((k) => (setting[k] === undefined ? [] : [[k, setting[k]]]))),
    ]),
  ),
});

/** Validates `env` and returns the frozen configuration, or throws a ConfigError naming each bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv, options: LoadOptions = {}): Config {
  const values = read(env);
  // A lease must outlive a few missed heartbeats, or a busy node is declared dead while alive.
  if (values.CLUSTER_LEASE_MS < 2 * values.CLUSTER_HEARTBEAT_MS) {
    throw new ConfigError(
      `invalid configuration: CLUSTER_LEASE_MS must be at least twice CLUSTER_HEARTBEAT_MS (got ${values.CLUSTER_LEASE_MS} and ${values.CLUSTER_HEARTBEAT_MS}; the default is 15000 for 5000)`,
    );
  }
  // Each row's value to its field: `port`, or `cluster.leaseMs` inside the frozen `cluster` group.
  const fields: Record<string, unknown> = {};
  const groups: Record<string, Record<string, unknown>> = {};
  for (const [name, setting] of ROWS) {
    const [first, second] = setting.to?.split(".") ?? [];
    if (second !== undefined) (groups[first!] ??= {})[second] = values[name];
    else if (first !== undefined) fields[first] = values[name];
  }
  for (const [group, members] of Object.entries(groups)) fields[group] = Object.freeze(members);
  return Object.freeze({
    ...(fields as Fields & Groups),
    secretKeyBase: secretKeyBase(values, options),
    tracing: tracingConfig(values),
    versions: versionPolicy({ 1: { sunset: values.V1_SUNSET, brownouts: values.V1_BROWNOUTS } }),
  });
}

/** Every row checked (ajv, then its `parse`), every failure named in one ConfigError. */
function read(env: NodeJS.ProcessEnv): Values {
  // Empty strings mean "unset", as in most shells' `FOO= cmd`.
  const input: Record<string, unknown> = {};
  for (const [name] of ROWS) {
    const value = env[name];
    if (value !== undefined && value !== "") input[name] = value;
  }
  // ajv's coercion reads numbers as Number() does ("0x50", "1e3", " 80 "); a setting is decimal digits.
  const notDecimal = ROWS.filter(
    ([name, setting]) => setting.type === "integer" && typeof input[name] === "string" && !/^-?\d+$/.test(input[name]),
  ).map(([name]) => name);
  const problems = notDecimal.map((name) => `${name} must be a decimal integer ${shown(env, name)}`);
  if (!validateEnv(input) || notDecimal.length > 0) {
    for (const e of validateEnv.errors ?? []) {
      const name = e.instancePath.slice(1);
      if (!(notDecimal as string[]).includes(name))
        problems.push(`${name} ${e.message ?? "is invalid"} ${shown(env, name as Name)}`);
    }
  } else {
    for (const [name, setting] of ROWS) {
      if (setting.parse === undefined) continue;
      try {
        input[name] = (setting.parse as (value: unknown) => unknown)(input[name]);
      } catch (error) {
        problems.push(`${name} ${(error as Error).message}`);
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  return input as unknown as Values;
}

/** Required in production; elsewhere, when unset, the caller's development secret (none: the boot stops). */
function secretKeyBase(values: Values, options: LoadOptions): string {
  if (values.SECRET_KEY_BASE !== undefined) return values.SECRET_KEY_BASE;
  if (values.NODE_ENV === "production")
    throw new ConfigError("invalid configuration: SECRET_KEY_BASE is required when NODE_ENV=production");
  if (options.developmentSecret === undefined) {
    throw new ConfigError(
      "invalid configuration: SECRET_KEY_BASE is required (outside production, `serve` generates one under DATA_DIR)",
    );
  }
  return options.developmentSecret(values.DATA_DIR);
}

/** The OpenTelemetry specification's rules: the signal-specific variable wins; the generic endpoint gets `/v1/traces`. */
function tracingConfig(values: Values): TracingConfig | undefined {
  const generic = values.OTEL_EXPORTER_OTLP_ENDPOINT;
  const url =
    values.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (generic === undefined ? undefined : `${generic.replace(/\/+$/, "")}/v1/traces`);
  if (url === undefined) return undefined;
  return Object.freeze({
    url,
    protocol: values.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? values.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf",
  });
}

// Boot errors end up in logs: never echo a secret or a URL that may carry a password.
function shown(env: NodeJS.ProcessEnv, name: Name): string {
  return (SETTINGS[name] as Setting).hidden === true ? "(value not shown)" : `(got ${JSON.stringify(env[name])})`;
}

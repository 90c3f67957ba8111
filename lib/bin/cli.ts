/**
 * The command line: `serve` (default), `migrate` and `help` (also `--help`, `-h`: the commands and
 * every setting with its default). The only place that calls process.exit.
 * Outside production, with SECRET_KEY_BASE unset, both keep a development secret under DATA_DIR
 * (development-secret.ts): configuration itself only validates.
 *
 *     node --import tsx lib/bin/cli.ts serve
 */
import "./v8-flags.ts";
import { ConfigError, loadConfig } from "../config.ts";
import { migrate, openDatabase } from "../db/index.ts";
import { closeDeps, createDeps } from "../deps.ts";
import { startServer } from "../server.ts";
import { SETTINGS, type Setting } from "../settings.ts";
import { flushLogger } from "../telemetry/logger.ts";
import { developmentSecret } from "./development-secret.ts";

async function serve(): Promise<void> {
  const config = loadConfig(process.env, { developmentSecret });
  const deps = await createDeps(config);
  const server = await startServer(deps);
  deps.logger.info(
    {
      http: server.httpUrl,
      socket: server.socketUrl,
      database: config.databaseUrl === undefined ? "pglite" : "postgresql",
    },
    "hypercast started",
  );
  console.log(`Hypercast API     ${server.httpUrl}`);
  console.log(`Hypercast socket  ${server.socketUrl}`);

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, "draining");
    try {
      await server.stop();
      await closeDeps(deps);
      deps.logger.info("stopped");
      await flushLogger(deps.logger);
      process.exit(0);
    } catch (error) {
      deps.logger.error({ err: error }, "shutdown failed");
      await flushLogger(deps.logger);
      process.exit(1);
    }
  };
  process.once("SIGTERM", () => void shutdown("SIGTERM"));
  process.once("SIGINT", () => void shutdown("SIGINT"));
}

async function migrateCommand(): Promise<void> {
  const config = loadConfig(process.env, { developmentSecret });
  const db = await openDatabase({
    databaseUrl: config.databaseUrl,
    dataDir: config.dataDir,
    schema: config.databaseSchema,
  });
  try {
    const applied = await migrate(db);
    console.log(applied.length === 0 ? "database is up to date" : `applied: ${applied.join(", ")}`);
  } finally {
    await db.destroy();
  }
}

const USAGE = `usage: hypercast [serve | migrate | help]

  serve     run the HTTP API and the socket endpoint (the default)
  migrate   bring the database's schema up to date, then exit
  help      print this (also --help, -h)

Commands take no arguments.`;

/** The usage and one line per setting: its name, its default, its meaning (the README's table as text). */
async function help(): Promise<void> {
  const width = Math.max(...Object.keys(SETTINGS).map((name) => name.length));
  const rows = Object.entries(SETTINGS as Record<string, Setting>).map(([name, setting]) => {
    const byDefault = setting.byDefault ?? (setting.default === undefined ? "unset" : String(setting.default));
    return `  ${name.padEnd(width)}  ${plain(setting.doc)} (default: ${plain(byDefault)})`;
  });
  console.log([USAGE, "", "Settings are read from the environment (README, Configuration):", ...rows].join("\n"));
}

/** The README's Markdown as terminal text: no backticks or bold, and a link's text without its target. */
function plain(markdown: string): string {
  return markdown
    .replaceAll("`", "")
    .replaceAll("**", "")
    .replace(/\[([^\]]+)\]\([^)]*\)/g, "$1");
}

const commands: Record<string, () => Promise<void>> = {
  serve,
  migrate: migrateCommand,
  help,
  "--help": help,
  "-h": help,
};
const [name = "serve", ...rest] = process.argv.slice(2);
const command = rest.some((arg) => arg === "--help" || arg === "-h") ? help : commands[name];
if (command === undefined) {
  console.error(`unknown command ${JSON.stringify(name)}; expected one of: serve, migrate, help\n\n${USAGE}`);
  process.exit(2);
}
// Flags are not settings: `npm start -- --port 5000` must not start on the default port as if it had been obeyed.
if (command !== help && rest.length > 0) {
  console.error(
    `${name} takes no arguments, got ${rest.join(" ")}: settings come from the environment (PORT=5000 npm start); \`hypercast help\` lists them`,
  );
  process.exit(2);
}
command().catch((error: unknown) => {
  console.error(error instanceof ConfigError ? error.message : error);
  process.exit(1);
});

/**
 * The development secret: outside production, when SECRET_KEY_BASE is unset, the commands that
 * start the server (`serve`, and `migrate` which reads the same configuration) generate a random
 * one once and keep it under DATA_DIR, so tokens survive restarts. Configuration only validates
 * (lib/config.ts calls this through its `developmentSecret` option): this file alone writes it.
 *
 *     const config = loadConfig(process.env, { developmentSecret })
 *     // SECRET_KEY_BASE unset, NODE_ENV=development → DATA_DIR/secret_key_base (mode 0600), a warning the first time
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** The secret kept in `dataDir`, generated (with a warning) when there is none yet. */
export function developmentSecret(
  dataDir: string,
  warn: (message: string) => void = (message) => console.warn(message),
): string {
  const file = join(dataDir, "secret_key_base");
  try {
    const existing = readFileSync(file, "utf8").trim();
    if (existing.length >= 32) return existing;
  } catch {
    // not created yet
  }
  const secret = randomBytes(48).toString("base64url");
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  warn(`SECRET_KEY_BASE is not set: generated one and stored it in ${file} (set SECRET_KEY_BASE in production)`);
  return secret;
}

/**
 * lib/bin/development-secret.ts: outside production, with SECRET_KEY_BASE unset, `serve` gets a
 * secret generated once under DATA_DIR (owner-only, with one warning) and reused on restart;
 * loadConfig calls it only then.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { developmentSecret } from "../../lib/bin/development-secret.ts";
import { loadConfig } from "../../lib/config.ts";

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hypercast-secret-"));
  dirs.push(dir);
  return dir;
}
test.after.always(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

test("development generates a secret once under DATA_DIR, with a warning, and reuses it", (t) => {
  const dataDir = join(tempDir(), "nested", "data");
  const warnings: string[] = [];
  const serve = { developmentSecret: (dir: string) => developmentSecret(dir, (m) => warnings.push(m)) };
  const first = loadConfig({ DATA_DIR: dataDir }, serve);
  t.true(first.secretKeyBase.length >= 32);
  t.is(warnings.length, 1);
  t.regex(warnings[0]!, /SECRET_KEY_BASE/);
  const file = join(dataDir, "secret_key_base");
  t.is(readFileSync(file, "utf8").trim(), first.secretKeyBase);
  t.is(statSync(file).mode & 0o777, 0o600, "only the owner may read the secret");
  t.is(first.dataDir, dataDir);

  const second = loadConfig({ DATA_DIR: dataDir }, serve);
  t.is(second.secretKeyBase, first.secretKeyBase, "the generated secret survives restarts");
  t.is(warnings.length, 1, "no second warning once the secret exists");

  const other = loadConfig({ DATA_DIR: tempDir() }, { developmentSecret: (dir) => developmentSecret(dir, () => {}) });
  t.not(other.secretKeyBase, first.secretKeyBase, "each data directory gets its own random secret");
});

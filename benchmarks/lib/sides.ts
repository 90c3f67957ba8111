/**
 * The two sides of a comparison (bench:joins:compare, bench:http:compare): a git ref, by default
 * HEAD, against the working tree, or any two refs, each built as production runs it.
 *
 *     const commit = commitOf("base", "HEAD", usage)   // → "fb0182f…", or usage() for a bad ref
 *     const build = buildSide(".bench/compare-1/base", commit, "HEAD")   // → ".bench/compare-1/base/source/dist"
 */
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildHypercast } from "./compiled.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The command-line options every comparison takes, for `parseArgs` beside its own. */
export const COMPARISON_OPTIONS = {
  base: { type: "string" },
  change: { type: "string" },
  rounds: { type: "string" },
  "base-node-flags": { type: "string" },
  "change-node-flags": { type: "string" },
  "database-url": { type: "string" },
  "max-seconds": { type: "string" },
  smoke: { type: "boolean", default: false },
} as const;

const git = (args: string[]) => spawnSync("git", args, { cwd: ROOT, encoding: "utf8" });

/** The commit `ref` names (undefined for none: the working tree); a bad ref goes to `usage`. */
export function commitOf(flag: string, ref: string | undefined, usage: (message: string) => never): string | undefined {
  if (ref === undefined) return undefined;
  const commit = git(["rev-parse", "--verify", "--quiet", `${ref}^{commit}`]);
  return commit.status === 0 ? commit.stdout.trim() : usage(`--${flag}: no commit ${ref}`);
}

/**
 * A side's build in `dir` (relative to the repository): the working tree through `npm run build`
 * when `commit` is undefined, or that commit's files (`git archive`) built by its own build script,
 * inside the repository so that its imports find our node_modules. Returns the build directory.
 */
export function buildSide(dir: string, commit: string | undefined, ref: string | undefined): string {
  if (commit === undefined) return buildHypercast(dir);
  const source = join(ROOT, dir, "source");
  const tarball = join(ROOT, dir, "source.tar");
  mkdirSync(source, { recursive: true });
  const archive = git(["archive", "--format=tar", "-o", tarball, commit]);
  if (archive.status !== 0) throw new Error(`git archive ${ref} exited with ${archive.status}: ${archive.stderr}`);
  const extract = spawnSync("tar", ["-x", "-f", tarball, "-C", source], { stdio: ["ignore", "ignore", "inherit"] });
  if (extract.status !== 0) throw new Error(`tar exited with ${extract.status}`);
  const npm = spawnSync("npm", ["run", "build"], {
    cwd: source,
    env: { ...process.env, BUILD_DIR: "dist" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (npm.status !== 0) throw new Error(`npm run build of ${ref} exited with ${npm.status}`);
  return `${dir}/source/dist`;
}

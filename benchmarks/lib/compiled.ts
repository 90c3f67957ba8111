/**
 * Benchmarked servers run as production runs them: plain JavaScript under `node`, with no runtime
 * TypeScript loader (tsx names every function it loads with `Object.defineProperty`, which costs
 * time and memory on every closure created). `buildHypercast` runs `npm run build` into a
 * directory of the benchmark's own; `compileEntry` compiles one benchmark entry with esbuild
 * (bundled, packages left to node_modules) into the same directory, its imports of `lib/` pointed
 * at that build, so an entry that starts Hypercast runs Hypercast's compiled modules.
 *
 *     const dir = buildHypercast(`.bench/http-${process.pid}`)
 *     const entry = await compileEntry(dir, "benchmarks/references/koa-server.ts")
 *     // → URL of <dir>/benchmarks/references/koa-server.mjs, to fork with plain node
 */
import { spawnSync } from "node:child_process";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** `npm run build` into `dir` (relative to the repository). */
export function buildHypercast(dir: string): string {
  const build = spawnSync("npm", ["run", "build"], {
    cwd: ROOT,
    env: { ...process.env, BUILD_DIR: dir },
    stdio: ["ignore", "ignore", "inherit"],
  });
  if (build.status !== 0) throw new Error(`npm run build exited with ${build.status}`);
  return dir;
}

/**
 * `source` (relative to the repository) compiled to `<dir>/<source>.mjs`; its imports of the
 * repository's `lib/` stay imports, of the build's `.js` files (built by `buildHypercast`).
 */
export async function compileEntry(dir: string, source: string, options: { tsconfig?: string } = {}): Promise<URL> {
  const { build } = await import("esbuild");
  const outfile = join(ROOT, dir, source.replace(/\.ts$/, ".mjs"));
  const lib = join(ROOT, "lib");
  await build({
    entryPoints: [join(ROOT, source)],
    outfile,
    platform: "node",
    format: "esm",
    target: "node20",
    bundle: true,
    packages: "external",
    logLevel: "warning",
    ...(options.tsconfig === undefined ? {} : { tsconfig: join(ROOT, options.tsconfig) }),
    plugins: [
      {
        name: "hypercast-build",
        setup(b) {
          b.onResolve({ filter: /\/lib\/.*\.ts$/ }, (args) => {
            const target = join(args.resolveDir, args.path);
            if (!target.startsWith(lib + "/")) return undefined;
            const built = join(ROOT, dir, relative(ROOT, target)).replace(/\.ts$/, ".js");
            let path = relative(dirname(outfile), built);
            if (!path.startsWith(".")) path = `./${path}`;
            return { path, external: true };
          });
        },
      },
    ],
  });
  return pathToFileURL(outfile);
}

/**
 * The operations page's files, built from source when first asked for: page/app.ts bundled with
 * the `phoenix` client and uPlot into one script, page/style.css with uPlot's styles into one
 * stylesheet (esbuild, in memory, nothing written to disk), and the page/index.html template.
 * Built from the lockfile's exact packages every time, so what a node serves is reproducible
 * from the checkout; the build takes a fraction of a second and happens once per process.
 *
 *     const assets = dashboardAssets()
 *     const { script, stylesheet, html } = await assets() // the same promise on every call
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

export interface DashboardAssets {
  /** The bundled page script (ES2020, minified). */
  script: string;
  stylesheet: string;
  /** index.html with a `{{SOCKET_URL}}` placeholder. */
  html: string;
}

const PAGE = new URL("./page/", import.meta.url);

/** A memoised builder: the first call bundles, every later call gets the same result. */
export function dashboardAssets(): () => Promise<DashboardAssets> {
  let built: Promise<DashboardAssets> | undefined;
  return () => {
    built ??= bundle().catch((error: unknown) => {
      built = undefined; // a failed build is retried by the next request, not cached
      throw error;
    });
    return built;
  };
}

async function bundle(): Promise<DashboardAssets> {
  // Loaded by the first request for the page, not at boot: a node nobody watches never holds esbuild.
  const { build } = await import("esbuild");
  const result = await build({
    entryPoints: { app: fileURLToPath(new URL("app.ts", PAGE)), style: fileURLToPath(new URL("style.css", PAGE)) },
    bundle: true,
    minify: true,
    format: "iife",
    target: "es2020",
    platform: "browser",
    outdir: "/dashboard",
    write: false,
    legalComments: "eof",
    logLevel: "silent",
    // The page's compiler settings given here, so no tsconfig.json is read: the bundle is the same
    // from the sources and from dist/ (where page/tsconfig.json's `extends` has nothing to point at,
    // and the build does not copy it). page/tsconfig.json is for type-checking only.
    tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true, useDefineForClassFields: true } },
  });
  const text = (ext: string) => {
    const file = result.outputFiles.find((f) => f.path.endsWith(ext));
    if (file === undefined) throw new Error(`esbuild produced no ${ext} file for the dashboard`);
    return file.text;
  };
  return { script: text(".js"), stylesheet: text(".css"), html: await readFile(new URL("index.html", PAGE), "utf8") };
}

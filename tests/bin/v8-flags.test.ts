/**
 * lib/bin/v8-flags.ts: importing it turns V8's allocation-site pretenuring off in a running
 * process, which shows in how often the young generation is collected. One allocation site whose
 * objects all stay alive: with pretenuring on, V8 soon allocates that site's objects in the old
 * generation, and young collections stop; with it off, every filled young generation is collected
 * (and its survivors copied). Also: the CLI imports it before anything else.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import test from "ava";
import { transformSync } from "esbuild";

/**
 * The module as the build emits it, run by plain node: tsx's loader, present in the process,
 * changes the young generation's sizing enough that V8's defaults no longer pretenure this site.
 */
const FLAGS_MODULE = transformSync(readFileSync(new URL("../../lib/bin/v8-flags.ts", import.meta.url), "utf8"), {
  loader: "ts",
  format: "esm",
}).code;

/** A child process that keeps 3 million objects from one literal; prints its young collections. */
async function youngCollections(importFlags: boolean): Promise<number> {
  const program = `
    ${importFlags ? FLAGS_MODULE : ""}
    const { PerformanceObserver, constants } = await import("node:perf_hooks");
    let minor = 0;
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) if (entry.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) minor++;
    });
    observer.observe({ entryTypes: ["gc"] });
    const make = (i) => ({ id: i, name: "kept", next: null, list: [i] });
    const kept = [];
    for (let i = 0; i < 3_000_000; i++) kept.push(make(i));
    setTimeout(() => { observer.disconnect(); console.log(minor, kept.length); }, 200);
  `;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", program], {
    timeout: 60_000,
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  return Number(stdout.trim().split(" ")[0]);
}

test("importing v8-flags turns allocation-site pretenuring off: young collections keep coming", async (t) => {
  const [defaults, withFlags] = await Promise.all([youngCollections(false), youngCollections(true)]);
  t.log(`young collections while keeping 3 M objects: ${defaults} with V8's defaults, ${withFlags} with v8-flags`);
  t.true(defaults > 0);
  t.true(withFlags >= 2 * defaults, `expected at least twice ${defaults} young collections, got ${withFlags}`);
});

test("the CLI imports v8-flags before any other module", (t) => {
  const source = readFileSync(new URL("../../lib/bin/cli.ts", import.meta.url), "utf8");
  const firstImport = /^import .*$/m.exec(source)?.[0];
  t.is(firstImport, 'import "./v8-flags.ts";');
});

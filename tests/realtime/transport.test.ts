import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { loadUws } from "../../lib/realtime/transport.ts";

test("the native uWebSockets.js binary is what runs here", (t) => {
  t.is(typeof loadUws().App, "function");
});

test("the silent pure-JS fallback is refused with a clear error", (t) => {
  const transport = fileURLToPath(new URL("../../lib/realtime/transport.ts", import.meta.url));
  const script = `import(${JSON.stringify(transport)}).then((m) => { m.loadUws(); console.log("loaded"); }, (e) => { console.log(String(e)); process.exit(3); }).catch((e) => { console.log("ERR " + e.message); process.exit(4); });`;
  const run = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
    env: { ...process.env, UWS_USE_FALLBACK: "1" },
    encoding: "utf8",
    timeout: 30_000,
  });
  t.is(run.status, 4, run.stdout + run.stderr);
  t.regex(run.stdout, /fell back to its pure-JS implementation/);
});

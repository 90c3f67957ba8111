/** The command-line options the benchmarks share (benchmarks/lib/options.ts). */
import test from "ava";
import { describeNodeFlags, nodeFlags } from "../../benchmarks/lib/options.ts";

test("--node-flags splits into node flags, none by default", (t) => {
  t.deepEqual(nodeFlags(undefined), []);
  t.deepEqual(nodeFlags("  "), []);
  t.deepEqual(nodeFlags("--max-semi-space-size=64  --no-opt"), ["--max-semi-space-size=64", "--no-opt"]);
  t.is(describeNodeFlags([]), "V8's defaults for every server");
  t.is(describeNodeFlags(["--max-semi-space-size=64"]), "--max-semi-space-size=64 for every server");
});

test("--node-flags refuses what is not a flag, naming it", (t) => {
  for (const bad of ["max-semi-space-size=64", "--max-semi-space-size=64 ./evil.js", "-e", "--Upper"])
    t.throws(() => nodeFlags(bad), { message: /--node-flags expects node flags/ });
});

/**
 * The attribution behind the benchmarks' `--perf` (benchmarks/lib/perf.ts), on `perf script`
 * output in the shape perf 6 prints it (`-F pid,time,period,ip,sym,dso`): each sample goes to
 * the target whose process and time window it falls in, and to one category. The end-to-end run
 * with a real perf is in http-smoke.test.ts.
 */
import { Readable } from "node:stream";
import test from "ava";
import { attribute, categorise } from "../../benchmarks/lib/perf.ts";

const GC_SAMPLE = [
  "  100  10.000100:    2000000 ",
  "\t         c6d8e8 v8::internal::Scavenger::ScavengeObject<v8::internal::FullHeapObjectSlot> (/usr/bin/node)",
  "\t         1d2a31 JS:*respond file:///srv/.bench/x/lib/http/render.js:12:24 (/tmp/perf-100.map)",
];
const SYSCALL_SAMPLE = [
  "  100  10.000200:    2000000 ",
  "\tffffffff8138b300 tcp_sendmsg ([kernel.kallsyms])",
  "\tffffffff81000130 entry_SYSCALL_64_after_hwframe ([kernel.kallsyms])",
  "\t           10aba4 __send (/usr/lib/x86_64-linux-gnu/libc.so.6)",
  "\t         1d2a31 JS:*write node:internal/streams/writable:548:23 (/tmp/perf-100.map)",
];
const KNEX_SAMPLE = [
  "  100  10.000300:    1000000 ",
  "\t         b127d0 Builtins_KeyedLoadIC_Megamorphic (/usr/bin/node)",
  "\t         1d2a31 JS:*wrapString /srv/node_modules/knex/lib/formatter/wrappingFormatter.js:163:20 (/tmp/perf-100.map)",
  "\t         1d2a99 JS:^query /srv/node_modules/@koa/router/dist/index.mjs:10:2 (/tmp/perf-100.map)",
];
const NATIVE_SAMPLE = [
  "  200  10.000400:    3000000 ",
  "\t           1234 us_socket_write (/srv/node_modules/uws/uws_linux_x64_115.node)",
];
// Outside every window: another process, and the first process after its window closed.
const OTHER_PROCESS = ["  300  10.000500:    5000000 ", "\t           1234 memcpy (/usr/lib/libc.so.6)"];
const TOO_LATE = ["  100  12.000000:    5000000 ", "\t           1234 memcpy (/usr/lib/libc.so.6)"];

test("a sample's category: garbage collection, then system calls, then the innermost JavaScript frame's package, else its library", (t) => {
  t.is(categorise(GC_SAMPLE.slice(1)), "garbage collection");
  t.is(categorise(SYSCALL_SAMPLE.slice(1)), "system calls");
  t.is(categorise(KNEX_SAMPLE.slice(1)), "js: knex");
  t.is(categorise(KNEX_SAMPLE.slice(3)), "js: @koa/router");
  t.is(categorise(["\t  1 JS:*emit node:events:471:44 (/tmp/perf-1.map)"]), "js: node:events");
  t.is(categorise(["\t  1 JS:*x node:internal/streams/readable:1:1 (/tmp/perf-1.map)"]), "js: node:internal/streams");
  t.is(categorise(["\t  1 JS:*respond file:///srv/lib/http/render.js:1:1 (/tmp/perf-1.map)"]), "js: server");
  t.is(categorise(NATIVE_SAMPLE.slice(1)), "native: uws_linux_x64_115.node");
});

test("samples are given to the window of their process and time, as CPU µs per unit of work, by category and by function", async (t) => {
  const text = [GC_SAMPLE, SYSCALL_SAMPLE, KNEX_SAMPLE, NATIVE_SAMPLE, OTHER_PROCESS, TOO_LATE]
    .map((sample) => `${sample.join("\n")}\n\n`)
    .join("");
  const { categories, functions } = await attribute(Readable.from([text]), [
    { target: "hypercast", pid: 100, from: 10_000_000_000n, to: 11_000_000_000n, work: 4 },
    { target: "reference", pid: 200, from: 10_000_000_000n, to: 11_000_000_000n, work: 1 },
  ]);
  // Periods are nanoseconds: 2 ms over 4 requests is 500 µs per request.
  t.deepEqual(Object.fromEntries(categories.get("hypercast")!), {
    "garbage collection": 500,
    "system calls": 500,
    "js: knex": 250,
  });
  t.deepEqual(Object.fromEntries(categories.get("reference")!), { "native: uws_linux_x64_115.node": 3000 });
  t.deepEqual([...categories.keys()].sort(), ["hypercast", "reference"]);
  // By the innermost JavaScript function, whatever it called.
  t.deepEqual(Object.fromEntries(functions.get("hypercast")!), {
    "respond file:///srv/.bench/x/lib/http/render.js:12:24": 500,
    "write node:internal/streams/writable:548:23": 500,
    "wrapString /srv/node_modules/knex/lib/formatter/wrappingFormatter.js:163:20": 250,
  });
  t.deepEqual(Object.fromEntries(functions.get("reference")!), { "(no JavaScript on the stack)": 3000 });
});

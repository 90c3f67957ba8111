/**
 * V8 settings for a process that serves Hypercast, set before anything else is loaded: every
 * entry that serves imports this module first (`cli.ts`, and the benchmarks' Hypercast processes,
 * which run Hypercast as production does). Importing it is the whole API.
 *
 *     import "./v8-flags.ts"; // first import of the entry
 *
 * Allocation-site pretenuring is off (`--no-allocation-site-pretenuring`). With it on, V8 watches
 * which object literals survive young-generation collections and, once a site's objects mostly
 * survive, allocates that site's objects straight in the old generation. Under a burst of
 * concurrent requests, per-request objects (response headers, listeners, query builders) are all
 * still alive at the moment of a collection, so V8 may judge their sites long-lived, and a process
 * can keep that judgement. Under sustained load this happened to 19 of 26 Hypercast processes on
 * one machine and 4 of 27 on another: each young collection then promoted 0.5–0.85 MB instead of
 * 10–100 KB, pauses grew, and old-generation collections followed every few seconds (benchmarks/NOTES.md,
 * bench:http, "What sets p99" and "Pretenuring off"). Objects that really live long (sockets,
 * presence state) still reach the old generation by surviving young collections.
 *
 * Set here rather than on node's command line so that every way of starting Hypercast (`npm
 * start`, `node dist/lib/bin/cli.js`, a process manager) gets it. Set at run time, before the
 * application's code runs, it takes effect: tests/bin/v8-flags.test.ts checks that.
 */
import { setFlagsFromString } from "node:v8";

setFlagsFromString("--no-allocation-site-pretenuring");

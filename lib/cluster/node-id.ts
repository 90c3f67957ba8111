/**
 * Node identity in a cluster: unique per incarnation, like
 * Phoenix.Tracker's `{name, vsn}`, so a restarted process is never mistaken for its
 * predecessor and two processes never need a configured unique name.
 *
 *     createNodeId("n1") // → "n1:4242:1767225600000:9f3a"
 */
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";

export function createNodeId(name?: string): string {
  return `${name ?? hostname()}:${process.pid}:${Date.now()}:${randomBytes(2).toString("hex")}`;
}

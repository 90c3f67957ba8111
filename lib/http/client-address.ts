/**
 * The client's address, as every per-address limit and log line sees it: the TCP peer, unless
 * `TRUST_PROXY` says which reverse proxies may speak for the client in `X-Forwarded-For`.
 *
 * - unset: the TCP peer; `X-Forwarded-For` is ignored (anyone can send it).
 * - a number of hops, e.g. `1`: the entry that many hops back from the peer, as Express reads
 *   `trust proxy = 1` (one load balancer in front: its `X-Forwarded-For` last entry is the client).
 * - a CIDR list, e.g. `10.0.0.0/8, 192.168.1.7/32`: walk back from the peer while the address is
 *   one of those proxies; the first one that is not is the client.
 *
 * Entries that are not IP addresses stop the walk: a proxy we trust never writes one, so what
 * lies to their left was written by the client and is not believed.
 *
 *     const resolve = clientAddressResolver({ hops: 1 })
 *     resolve("10.0.0.2", "203.0.113.9, 198.51.100.4") // → "198.51.100.4"
 *     app.use(stampRequests(identifyClient(config.trustProxy))) // → ctx.state.clientAddress
 */
import { BlockList, isIP } from "node:net";
import type { TrustProxy } from "../setting-parsers.ts";
import type { RequestStamp } from "./stamp.ts";

export type AddressResolver = (peer: string, forwardedFor: string | undefined) => string;

export function clientAddressResolver(trust: TrustProxy): AddressResolver {
  if (trust === undefined) return (peer) => normalize(peer);
  if ("hops" in trust) {
    const hops = trust.hops;
    return (peer, forwardedFor) => {
      const chain = [...entries(forwardedFor), normalize(peer)];
      // chain[last] is the peer (hop 0); each trusted hop lets us read one entry further left.
      let index = chain.length - 1;
      for (let hop = 0; hop < hops && index > 0; hop++) {
        if (isIP(chain[index - 1]!) === 0) break;
        index--;
      }
      return chain[index]!;
    };
  }
  const proxies = new BlockList();
  for (const cidr of trust.cidrs) {
    const [address, prefix] = cidr.split("/") as [string, string | undefined];
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    proxies.addSubnet(address, prefix === undefined ? (family === "ipv6" ? 128 : 32) : Number(prefix), family);
  }
  const trusted = (address: string) => {
    const family = isIP(address);
    return family !== 0 && proxies.check(address, family === 6 ? "ipv6" : "ipv4");
  };
  return (peer, forwardedFor) => {
    const chain = [...entries(forwardedFor), normalize(peer)];
    let index = chain.length - 1;
    while (index > 0 && trusted(chain[index]!) && isIP(chain[index - 1]!) !== 0) index--;
    return chain[index]!;
  };
}

/** Sets `ctx.state.clientAddress` (read with `clientAddressOf`) for everything after it. */
export function identifyClient(trust: TrustProxy): RequestStamp {
  const resolve = clientAddressResolver(trust);
  return function identifyClient(ctx) {
    // Node joins repeated X-Forwarded-For lines with ", ".
    const forwarded = ctx.req.headers["x-forwarded-for"];
    ctx.state.clientAddress = resolve(
      ctx.req.socket.remoteAddress ?? "",
      typeof forwarded === "string" && forwarded !== "" ? forwarded : undefined,
    );
  };
}

/** `X-Forwarded-For: a, b` (possibly over several header lines, which node joins with ", "). */
function entries(header: string | undefined): string[] {
  if (header === undefined) return [];
  return header
    .split(",")
    .map((entry) => normalize(entry.trim()))
    .filter((entry) => entry !== "");
}

/** `::ffff:127.0.0.1` → `127.0.0.1`, so one client has one key whichever way the socket saw it. */
function normalize(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

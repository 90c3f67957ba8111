/**
 * The client address every per-address limit uses: TRUST_PROXY parsed at boot, then resolved
 * from the TCP peer and X-Forwarded-For (pure; the servers that honour it are in rate-limit.test.ts).
 */
import test from "ava";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { clientAddressResolver } from "../../lib/http/client-address.ts";

const SECRET = "x".repeat(32);
const trustOf = (value: string | undefined) =>
  loadConfig({ NODE_ENV: "test", SECRET_KEY_BASE: SECRET, TRUST_PROXY: value }).trustProxy;

test("TRUST_PROXY: unset trusts nobody, a number is hops, a list is proxy addresses; anything else names the variable", (t) => {
  t.is(trustOf(undefined), undefined);
  t.deepEqual(trustOf("2"), { hops: 2 });
  t.deepEqual(trustOf("10.0.0.0/8, 192.168.1.7 ,::1, fd00::/8"), {
    cidrs: ["10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"],
  });
  for (const bad of ["yes", "10.0.0.0/33", "10.0.0.0/8/1", "proxy.internal", "::1/129", "1.2.3"]) {
    const error = t.throws(() => trustOf(bad), { instanceOf: ConfigError });
    t.regex(error!.message, /TRUST_PROXY must be a number of proxy hops .* or a comma-separated list/, bad);
  }
});

test("unset: the TCP peer, whatever X-Forwarded-For says", (t) => {
  const resolve = clientAddressResolver(undefined);
  t.is(resolve("203.0.113.9", "1.1.1.1"), "203.0.113.9");
  t.is(resolve("::ffff:127.0.0.1", undefined), "127.0.0.1", "IPv4-mapped IPv6 is the IPv4 address");
});

test("hops: the entry that many hops back from the peer; never past the first entry", (t) => {
  const one = clientAddressResolver({ hops: 1 });
  t.is(one("10.0.0.2", "203.0.113.9"), "203.0.113.9");
  t.is(one("10.0.0.2", "6.6.6.6, 203.0.113.9"), "203.0.113.9", "what the client prepended is not believed");
  t.is(one("10.0.0.2", undefined), "10.0.0.2", "no header: the peer");
  const two = clientAddressResolver({ hops: 2 });
  t.is(two("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.0.0.1"), "203.0.113.9");
  t.is(two("10.0.0.2", "203.0.113.9"), "203.0.113.9", "fewer entries than hops: the first");
  t.is(one("10.0.0.2", "203.0.113.9, not-an-ip"), "10.0.0.2", "a garbage entry stops the walk");
  t.is(clientAddressResolver({ hops: 0 })("10.0.0.2", "203.0.113.9"), "10.0.0.2");
});

test("CIDR list: walk back from the peer over trusted proxies; the first untrusted address is the client", (t) => {
  const resolve = clientAddressResolver({ cidrs: ["10.0.0.0/8", "::1"] });
  t.is(resolve("10.0.0.2", "203.0.113.9"), "203.0.113.9");
  t.is(resolve("10.0.0.2", "6.6.6.6, 203.0.113.9, 10.1.2.3"), "203.0.113.9", "two trusted hops, then the client");
  t.is(resolve("198.51.100.1", "203.0.113.9"), "198.51.100.1", "a peer that is not a trusted proxy is the client");
  t.is(resolve("::1", "2001:db8::7"), "2001:db8::7");
  t.is(resolve("10.0.0.2", "10.0.0.3"), "10.0.0.3", "only proxies: the leftmost");
});

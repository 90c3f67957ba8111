/**
 * Seeds the benchmark's data through the public API of one node, the way a client would: sign up,
 * log in (a bearer token and a socket token), create public rooms. Every node shares the database
 * and SECRET_KEY_BASE, so the socket token and the rooms are good on all of them.
 *
 *     const seed = await seedOverApi("http://127.0.0.1:4000", ["probe", "one-node", "two-nodes"])
 *     seed.socketToken; seed.topics["two-nodes"] // "room:3"
 */
import { randomBytes } from "node:crypto";

export interface Seed {
  socketToken: string;
  /** Room name → its topic, `room:<id>`. */
  topics: Record<string, string>;
}

async function post(url: string, body: unknown, token?: string): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/vnd.app.v2+json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST ${url} answered ${response.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

export async function seedOverApi(httpUrl: string, rooms: string[]): Promise<Seed> {
  const email = `bench-${randomBytes(6).toString("hex")}@example.com`;
  const password = randomBytes(12).toString("hex");
  await post(`${httpUrl}/users`, { name: "bench", email, password });
  const session = await post(`${httpUrl}/sessions`, { email, password });
  const token = session["token"];
  const socketToken = session["socket_token"];
  if (typeof token !== "string" || typeof socketToken !== "string")
    throw new Error(`POST /sessions gave no token and socket_token: ${JSON.stringify(Object.keys(session))}`);
  const topics: Record<string, string> = {};
  for (const name of rooms) {
    const room = await post(`${httpUrl}/rooms`, { name }, token);
    if (typeof room["id"] !== "number") throw new Error(`POST /rooms gave no id`);
    topics[name] = `room:${room["id"]}`;
  }
  return { socketToken, topics };
}

/**
 * Socket tokens from a Hypercast API, so a load test needs no hand-copied token: log in
 * (`POST /sessions`), signing up first (`POST /users`) when the account does not exist, and create a
 * public room when no topic was given. Plain HTTP through fetch; nothing of the server's code.
 *
 *     const { socketToken, topic } = await mintToken("http://127.0.0.1:4000", "load@example.com", "secret password", undefined)
 */

export interface Minted {
  socketToken: string;
  topic: string;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
}

async function post(url: string, body: unknown, token?: string): Promise<Answer> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed };
}

const explain = (what: string, answer: Answer) =>
  new Error(`${what} answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`);

export async function mintToken(
  api: string,
  email: string,
  password: string,
  topic: string | undefined,
): Promise<Minted> {
  const base = api.replace(/\/+$/, "");
  let session = await post(`${base}/sessions`, { email, password });
  if (session.status === 401) {
    const created = await post(`${base}/users`, { name: email.split("@")[0] || "load", email, password });
    if (created.status !== 201) throw explain(`signing up ${email} (POST /users)`, created);
    session = await post(`${base}/sessions`, { email, password });
  }
  if (session.status !== 201) throw explain("logging in (POST /sessions)", session);
  const { token, socket_token: socketToken } = session.body;
  if (typeof token !== "string" || typeof socketToken !== "string")
    throw new Error(`POST /sessions gave no token and socket_token: ${Object.keys(session.body).join(", ")}`);
  if (topic !== undefined) return { socketToken, topic };
  const room = await post(`${base}/rooms`, { name: `load ${new Date().toISOString()}` }, token);
  if (room.status !== 201 || typeof room.body["id"] !== "number") throw explain("creating a room (POST /rooms)", room);
  return { socketToken, topic: `room:${room.body["id"]}` };
}

/** Sessions and socket tokens: the credentials a login hands out, with links to use them. */
import { link, type RenderContext, type Renderers } from "./render-context.ts";

export interface IssuedCredentials {
  userId: number;
  /** The opaque bearer token; absent when only a socket token was issued. */
  token?: string;
  socketToken: string;
  /** The ws:// URL of the realtime endpoint. */
  socketUrl: string;
}

function credentials(c: IssuedCredentials, ctx: RenderContext) {
  return {
    ...(c.token === undefined ? {} : { token: c.token }),
    socket_token: c.socketToken,
    _links: { user: link(ctx, `/users/${c.userId}`), socket: { href: c.socketUrl, type: link(ctx, "/").type } },
  };
}

export const credentialsView = { 1: credentials, 2: credentials } satisfies Renderers<IssuedCredentials>;

/** A log-in (already validated by the schemas of both versions, which agree) as the accounts context takes it. */
export const sessionParams = {
  create: (body: Record<string, unknown>): { email: string; password: string } => ({
    email: body["email"] as string,
    password: body["password"] as string,
  }),
};

/** Sessions (log in and out) and fresh socket tokens. */
import type { Accounts } from "../../accounts/index.ts";
import { credentialsView, sessionParams } from "../../../representations/sessions.ts";
import { currentSessionId, currentUser } from "../auth.ts";
import { type HttpContext, bodyOf, clientAddressOf } from "../context.ts";
import { respond } from "../render.ts";

export function sessionsController(accounts: Accounts, socketUrl: (ctx: HttpContext) => string) {
  return {
    async create(ctx: HttpContext) {
      const { email, password } = sessionParams.create(bodyOf(ctx));
      const session = await accounts.createSession(email, password, clientAddressOf(ctx));
      respond(ctx, 201, credentialsView, {
        userId: session.user.id,
        token: session.token,
        socketToken: session.socketToken,
        socketUrl: socketUrl(ctx),
      });
    },

    async remove(ctx: HttpContext) {
      await accounts.revokeToken(ctx.state.token!);
      ctx.status = 204;
    },

    async createSocketToken(ctx: HttpContext) {
      const user = currentUser(ctx);
      const socketToken = await accounts.issueSocketToken(user.id, currentSessionId(ctx), user.apiVersion);
      respond(ctx, 201, credentialsView, { userId: user.id, socketToken, socketUrl: socketUrl(ctx) });
    },
  };
}

/** Users: sign-up is public; everything else needs a bearer token; changes are self-only. */
import type { Accounts } from "../../accounts/index.ts";
import { userParams, userView } from "../../../representations/users.ts";
import { currentUser } from "../auth.ts";
import type { HttpContext } from "../context.ts";
import { pageParams } from "../pagination.ts";
import { idParam } from "../params.ts";
import { respond, respondCollection } from "../render.ts";

export function usersController(accounts: Accounts) {
  return {
    async create(ctx: HttpContext) {
      const user = await accounts.registerUser(userParams[ctx.state.version].create(ctx.state.body), ctx.state.clientAddress);
      ctx.set("Location", `${ctx.state.basePath}/users/${user.id}`);
      respond(ctx, 201, userView, user, user.id); // the new user sees their own e-mail address
    },

    async index(ctx: HttpContext) {
      const params = pageParams(ctx);
      const page = await accounts.listUsers(params);
      respondCollection(ctx, { rel: "users", view: userView, page, params, path: "/users", key: (u) => u.id });
    },

    async show(ctx: HttpContext) {
      respond(ctx, 200, userView, await accounts.getUser(idParam(ctx, "id", "user")));
    },

    async update(ctx: HttpContext) {
      const changes = userParams[ctx.state.version].update(ctx.state.body);
      const user = await accounts.updateUser(currentUser(ctx).id, idParam(ctx, "id", "user"), changes);
      respond(ctx, 200, userView, user);
    },

    async remove(ctx: HttpContext) {
      await accounts.deleteUser(currentUser(ctx).id, idParam(ctx, "id", "user"));
      ctx.status = 204;
    },
  };
}

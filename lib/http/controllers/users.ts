/** Users: sign-up is public; everything else needs a bearer token; changes are self-only. */
import type { Accounts, UserChanges } from "../../accounts/index.ts";
import { userParams, userView } from "../../../representations/users.ts";
import { currentSessionId, currentUser } from "../auth.ts";
import { refuseWithdrawnPin } from "../negotiate.ts";
import { type HttpContext, versionOf, basePathOf, bodyOf, clientAddressOf } from "../context.ts";
import { pageParams } from "../pagination.ts";
import { idParam } from "../params.ts";
import { respond, respondCollection } from "../render.ts";

export function usersController(accounts: Accounts) {
  return {
    async create(ctx: HttpContext) {
      // The new account is pinned to the version its sign-up was served in.
      const registration = { ...userParams[versionOf(ctx)].create(bodyOf(ctx)), apiVersion: versionOf(ctx) };
      const user = await accounts.registerUser(registration, clientAddressOf(ctx));
      ctx.set("Location", `${basePathOf(ctx)}/users/${user.id}`);
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
      const params = userParams[versionOf(ctx)];
      const [actorId, userId] = [currentUser(ctx).id, idParam(ctx, "id", "user")];
      const changes: UserChanges = params.update(bodyOf(ctx));
      // Someone else's record is 403 (a missing one 404) before the body's values are judged.
      if (actorId !== userId) await accounts.assertMayChange(actorId, userId);
      refuseWithdrawnPin(ctx, changes.apiVersion);
      // The password first: a wrong current password changes nothing.
      const password = params.passwordChange(bodyOf(ctx));
      if (password !== undefined)
        await accounts.changePassword(actorId, userId, {
          ...password,
          keepSessionId: currentSessionId(ctx),
          lane: clientAddressOf(ctx),
        });
      const user = await accounts.updateUser(actorId, userId, changes);
      respond(ctx, 200, userView, user);
    },

    async remove(ctx: HttpContext) {
      await accounts.deleteUser(currentUser(ctx).id, idParam(ctx, "id", "user"));
      ctx.status = 204;
    },
  };
}

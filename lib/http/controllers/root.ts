/** The entry point. */
import { rootView } from "../../../representations/root.ts";
import type { HttpContext } from "../context.ts";
import { respond } from "../render.ts";

export function rootController(socketUrl: (ctx: HttpContext) => string) {
  return {
    async show(ctx: HttpContext) {
      respond(ctx, 200, rootView, { socketUrl: socketUrl(ctx) });
    },
  };
}

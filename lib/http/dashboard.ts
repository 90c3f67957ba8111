/**
 * `GET /dashboard`: the operations page (lib/dashboard/page/), its script `/dashboard/app.js` and
 * stylesheet `/dashboard/app.css`, all served by Hypercast itself — no CDN, no third-party host.
 * Served before version negotiation (a browser sends `Accept: text/html`) and outside the API's
 * hypermedia. The page itself holds no data: it logs in through the API and reads everything
 * over the operator-only `admin:dashboard` channel.
 *
 * Every response here replaces the API's `default-src 'none'` policy (security-headers.ts) with
 * one that allows exactly what the page uses: its own script and stylesheet, `fetch` to this
 * origin (POST/DELETE /sessions), the WebSocket of the realtime endpoint (another port, so named
 * explicitly), and the empty `data:` favicon. No inline script or style, no eval, no framing.
 *
 *     app.use(serveDashboard({ socketUrl: (ctx) => "ws://127.0.0.1:4001/socket" }))
 */
import { dashboardAssets, type DashboardAssets } from "../dashboard/assets.ts";
import type { HttpContext, Middleware } from "./context.ts";
import { HttpProblem } from "./problems.ts";

export const DASHBOARD_PATH = "/dashboard";

export interface DashboardOptions {
  /** The realtime endpoint as the page must reach it (`ws://host:port/socket`). */
  socketUrl: (ctx: HttpContext) => string;
  /** The built files (default: bundled once per app, on first request). */
  assets?: () => Promise<DashboardAssets>;
}

const FILES: Readonly<Record<string, { type: string; pick: (a: DashboardAssets) => string }>> = {
  [`${DASHBOARD_PATH}/app.js`]: { type: "text/javascript; charset=utf-8", pick: (a) => a.script },
  [`${DASHBOARD_PATH}/app.css`]: { type: "text/css; charset=utf-8", pick: (a) => a.stylesheet },
};

/** A host as a URL carries it: a name, an IPv4 address or a bracketed IPv6 one, and a port. Anything else never reaches a header. */
const SAFE_ORIGIN = /^wss?:\/\/(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export function serveDashboard(options: DashboardOptions): Middleware {
  const assets = options.assets ?? dashboardAssets();
  return function serveDashboardMiddleware(ctx, next) {
    const file = FILES[ctx.path];
    if (ctx.path !== DASHBOARD_PATH && file === undefined) return next();
    return answer(ctx, file);
  };
  async function answer(ctx: HttpContext, file: (typeof FILES)[string] | undefined): Promise<void> {
    ctx.state.route = ctx.path;
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      throw HttpProblem.of(
        "method_not_allowed",
        `${ctx.method} is not allowed here; allowed: GET, HEAD`,
        {},
        { Allow: "GET, HEAD" },
      );
    }
    const built = await assets();
    const socket = socketOrigin(options.socketUrl(ctx));
    ctx.set("Content-Security-Policy", policy(socket?.origin));
    ctx.set("Cache-Control", "no-cache");
    if (file !== undefined) {
      ctx.type = file.type;
      ctx.body = file.pick(built);
      return;
    }
    ctx.type = "text/html; charset=utf-8";
    ctx.body = built.html.replace("{{SOCKET_URL}}", escapeAttribute(socket?.url ?? ""));
  }
}

function policy(socketOrigin: string | undefined): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src data:",
    `connect-src 'self'${socketOrigin === undefined ? "" : ` ${socketOrigin}`}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
}

/** The socket URL and its origin, or undefined when the Host it was built from is not a plain host. */
function socketOrigin(url: string): { url: string; origin: string } | undefined {
  const match = /^(wss?:\/\/[^/]+)(\/.*)?$/.exec(url);
  if (match === null || !SAFE_ORIGIN.test(match[1]!)) return undefined;
  return { url, origin: match[1]! };
}

function escapeAttribute(text: string): string {
  return text.replace(/[&"<>']/g, (c) => `&#${c.charCodeAt(0)};`);
}

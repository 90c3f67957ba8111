/**
 * AdminChannel: the `admin:dashboard` topic, which the operations page (GET /dashboard) joins.
 *
 * - join: only operators — users whose e-mail is in ADMIN_EMAILS — are admitted; anyone else gets
 *   `{reason: "unauthorized"}`, with nothing pushed and nothing subscribed.
 * - after join: push `history` (lib/dashboard/snapshot.ts `DashboardHistory`: the last minutes of
 *   every node this node has heard from), so a page opened mid-run draws full charts at once.
 * - then every node's `dashboard.snapshot` broadcast (lib/dashboard/feed.ts publishes one per node
 *   per interval on the PubSub) reaches the socket as a `snapshot` push, through the realtime
 *   tier's usual fan-out: encoded once per node and tick, however many operators watch.
 * - client events: none (`unknown_event`).
 *
 *     adminRoute({ accounts, adminEmails: config.adminEmails, feed: deps.dashboard }) // → a ChannelRoute for "admin:dashboard"
 */
import type { Accounts } from "../../accounts/index.ts";
import { DASHBOARD_TOPIC, type DashboardFeed } from "../../dashboard/feed.ts";
import type { Channel, ChannelRoute } from "../channel.ts";

export interface AdminChannelDeps {
  accounts: Pick<Accounts, "findUser">;
  /** Lower-cased operator e-mail addresses (config.adminEmails). */
  adminEmails: ReadonlySet<string>;
  feed: Pick<DashboardFeed, "history">;
}

export function adminRoute(deps: AdminChannelDeps): ChannelRoute {
  return {
    pattern: DASHBOARD_TOPIC,
    create: () => createAdminChannel(deps),
    // Snapshots are already compact plain data: every operator gets them as published.
    render: (message) =>
      message.event === "dashboard.snapshot" ? { event: "snapshot", payload: { ...message.payload } } : undefined,
  };
}

/** Whether the user is an operator (checked on every join, so removing an address takes effect at the next join). */
export async function isOperator(
  deps: Pick<AdminChannelDeps, "accounts" | "adminEmails">,
  userId: number,
): Promise<boolean> {
  if (deps.adminEmails.size === 0) return false;
  const user = await deps.accounts.findUser(userId);
  return user !== undefined && deps.adminEmails.has(user.email.toLowerCase());
}

function createAdminChannel(deps: AdminChannelDeps): Channel {
  return {
    async join(_payload, ctx) {
      return (await isOperator(deps, ctx.socket.userId))
        ? { status: "ok" }
        : { status: "error", response: { reason: "unauthorized" } };
    },
    handleInfo(info, ctx) {
      if (info.event === "after_join") ctx.push("history", { ...deps.feed.history() });
    },
    async handleIn() {
      return { status: "error", response: { reason: "unknown_event" } };
    },
    terminate() {},
  };
}

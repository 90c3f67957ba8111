import { createLocalPresence } from "../../lib/presence/index.ts";
import { presenceContract } from "./contract.ts";

presenceContract("local", async (windowMs) => ({ presence: createLocalPresence({ windowMs }) }));

import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { pubsubContract } from "./contract.ts";

pubsubContract("local", async () => ({ pubsub: createLocalPubSub() }));

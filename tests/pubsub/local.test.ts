import { createLocalPubSub } from "../../lib/pubsub/index.ts";
import { pubsubContract, type AnyEvents } from "./contract.ts";

pubsubContract("local", async () => ({ pubsub: createLocalPubSub<AnyEvents>() }));

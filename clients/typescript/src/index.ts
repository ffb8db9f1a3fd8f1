/** Checkout pipeline producer for TypeScript: see clients/typescript/README section in the repository README. */
export type * from "./commands.js";
export {
  BULK_COMMANDS_PER_MESSAGE,
  CheckoutProducer,
  EnqueueFailed,
  MAX_COMMANDS_PER_MESSAGE,
  PIPELINE_CALLS,
  SCRIPT_BATCH,
  ShardMismatch,
  type EnqueueManyOptions,
  type ProducerOptions,
} from "./producer.js";
export { CommandValidator, InvalidCommand, InvalidRunId, type Prepared, checkRunId } from "./validation.js";
export { SESSION_ID_NAMESPACE, sessionIdFor, shardFor, shardOf, shardTag } from "./shards.js";

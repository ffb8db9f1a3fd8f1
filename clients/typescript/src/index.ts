/** Checkout pipeline producer for TypeScript: see clients/typescript/README section in the repository README. */
export type * from "./commands.js";
export {
  CheckoutProducer,
  EnqueueFailed,
  PIPELINE_CALLS,
  SCRIPT_BATCH,
  type EnqueueManyOptions,
  type ProducerOptions,
} from "./producer.js";
export { CommandValidator, InvalidCommand, type Prepared } from "./validation.js";

/* Generated from schemas/json/commands.schema.json by npm run generate: do not edit. */

/**
 * One checkout command, as a producer enqueues it: a JSON object discriminated by `type`. `command_id` (1-255 characters) is the idempotency key. Unknown keys are refused at the top level and inside `updates`; the session data inside (line items, buyer, addresses, payment instruments) keeps unknown attributes. Fields inside `updates` may be omitted but not null. Money is integer minor units.
 */
export type CheckoutCommand = CreateSession | UpdateSession | TransitionSession | CompleteSession | CancelSession;
export type CommandId = string;
export type Currency = string;
export type SessionId = string | null;
export type Type = "create_session";
export type CommandId1 = string;
export type ExpectedVersion = number | null;
export type SessionId1 = string;
export type Type1 = "update_session";
export type Email = string | null;
export type ContinueUrl = string;
export type Currency1 = string;
export type Id = string | null;
export type TotalAmount = number;
export type Type2 = string;
export type LineItems = LineItem[];
export type PaymentInstruments = PaymentInstrument[];
export type CommandId2 = string;
export type SessionId2 = string;
export type Target =
  "incomplete" | "requires_escalation" | "ready_for_complete" | "complete_in_progress" | "completed" | "canceled";
export type Type3 = "transition_session";
export type CommandId3 = string;
export type SessionId3 = string;
export type Type4 = "complete_session";
export type CommandId4 = string;
export type SessionId4 = string;
export type Type5 = "cancel_session";

export interface CreateSession {
  command_id: CommandId;
  currency?: Currency;
  session_id?: SessionId;
  type: Type;
}
export interface UpdateSession {
  command_id: CommandId1;
  expected_version?: ExpectedVersion;
  session_id: SessionId1;
  type: Type1;
  updates: SessionUpdates;
}
/**
 * The seed's partial update: an absent field is left as it is.
 */
export interface SessionUpdates {
  billing_address?: PostalAddress;
  buyer?: Buyer;
  continue_url?: ContinueUrl;
  currency?: Currency1;
  line_items?: LineItems;
  payment_instruments?: PaymentInstruments;
  shipping_address?: PostalAddress;
}
export interface PostalAddress {
  [k: string]: unknown;
}
export interface Buyer {
  email?: Email;
  [k: string]: unknown;
}
export interface LineItem {
  id?: Id;
  total_amount: TotalAmount;
  type: Type2;
  [k: string]: unknown;
}
export interface PaymentInstrument {
  [k: string]: unknown;
}
export interface TransitionSession {
  command_id: CommandId2;
  session_id: SessionId2;
  target: Target;
  type: Type3;
}
export interface CompleteSession {
  command_id: CommandId3;
  session_id: SessionId3;
  type: Type4;
}
export interface CancelSession {
  command_id: CommandId4;
  session_id: SessionId4;
  type: Type5;
}

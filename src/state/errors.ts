/** The state folder cannot be used as it is: says which file, where, and what to do. */
export class StateError extends Error {
  override readonly name = "StateError";
}

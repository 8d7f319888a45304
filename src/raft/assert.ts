/**
 * A broken invariant is a bug: it throws, and the runtime lets it crash the
 * process. Expected conditions are typed results, never assertions.
 */
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError(`invariant violated: ${message}`);
}

/** For hot paths: test the condition inline and build the message only on failure. */
export function fail(message: string): never {
  throw new AssertionError(`invariant violated: ${message}`);
}

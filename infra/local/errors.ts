/**
 * A problem the person starting the stack can fix (missing Java, busy port, second stack on the
 * same data dir). Its message is one line meant to be printed as is, without a stack trace.
 */
export class LocalStackError extends Error {
  override readonly name = 'LocalStackError';
}

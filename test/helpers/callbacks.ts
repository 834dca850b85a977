/**
 * Callback counting and hang detection. The spec promises that every callback is called
 * exactly once and that no call hangs; these helpers let a test say so without asserting
 * anything about speed. A callback called more than once is also remembered for the whole
 * process, so that assertNoLeaks() (leak-check.ts) fails the file even if the test that
 * handed it out did not look.
 */

/** A function that records its calls; see countCalls(). */
export interface RecordedCallback<A extends unknown[], R = void> {
  (...args: A): R;
  /** The arguments of every call, in order. */
  readonly calls: A[];
  /** How many times it was called. */
  readonly count: number;
  /** Resolves with the first call's arguments (never rejects). */
  readonly firstCall: Promise<A>;
  /** Throws an AssertionError-like Error unless it was called exactly once. */
  assertCalledOnce(): void;
}

/** A Node-style callback `(err, value)` recorder; see nodeCallback(). */
export interface RecordedNodeCallback<T> extends RecordedCallback<[err?: Error | null, value?: T]> {
  /**
   * Settles on the first call: rejects with `err` when it is truthy, else resolves with
   * `value`. Already marked handled, so an error nobody awaits is not an unhandled rejection.
   */
  readonly result: Promise<T>;
}

const violations: string[] = [];

/**
 * Every callback (made by countCalls or nodeCallback) that was called more than once in
 * this process, as messages naming it. Empty when all is well.
 */
export function callbackViolations(): readonly string[] {
  return violations;
}

/**
 * Wraps `fn` (or nothing) in a recorder that counts calls and keeps their arguments. A
 * second call is not thrown into the caller (that would change what the code under test
 * does); it is recorded, fails assertCalledOnce(), and fails assertNoLeaks() at the end
 * of the file. `name` appears in those messages (default "callback").
 */
export function countCalls<A extends unknown[], R = void>(fn?: (...args: A) => R, name = "callback"): RecordedCallback<A, R | undefined> {
  const calls: A[] = [];
  let resolveFirst!: (args: A) => void;
  const firstCall = new Promise<A>((resolve) => (resolveFirst = resolve));
  const recorder = ((...args: A): R | undefined => {
    calls.push(args);
    if (calls.length === 1) resolveFirst(args);
    else if (calls.length === 2) violations.push(`${name} was called more than once; the second call had ${describeArgs(args)}`);
    return fn?.(...args);
  }) as RecordedCallback<A, R | undefined>;
  Object.defineProperties(recorder, {
    calls: { get: () => calls },
    count: { get: () => calls.length },
    firstCall: { value: firstCall },
    assertCalledOnce: {
      value: () => {
        if (calls.length !== 1) {
          throw new Error(`expected ${name} to be called exactly once, it was called ${calls.length} times${calls.length > 1 ? `: ${calls.map(describeArgs).join("; ")}` : ""}`);
        }
      },
    },
  });
  return recorder;
}

/**
 * A Node-style callback `(err, value)` to hand to a callback API, with `result` as a
 * Promise of its first call, e.g.
 * `const cb = nodeCallback<SendInfo>(); conn.send(env, msg, cb); const info = await cb.result; cb.assertCalledOnce();`
 */
export function nodeCallback<T>(name = "callback"): RecordedNodeCallback<T> {
  const recorder = countCalls<[err?: Error | null, value?: T]>(undefined, name) as unknown as RecordedNodeCallback<T>;
  const result = recorder.firstCall.then(([err, value]) => {
    if (err) throw err;
    return value as T;
  });
  result.catch(() => {
    /* marks it handled; awaiting `result` still rejects */
  });
  Object.defineProperty(recorder, "result", { value: result });
  return recorder;
}

/**
 * Resolves or rejects as `promise` does, but rejects with a clear Error ("<what> did not
 * settle within <ms> ms: it hangs") if it has not settled within `ms` milliseconds. A
 * hang detector, not a speed assertion: pick `ms` generously (seconds). The timer is
 * cleared as soon as the promise settles, so nothing is leaked.
 */
export function settlesWithin<T>(promise: PromiseLike<T>, ms: number, what = "the promise"): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms: it hangs`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/**
 * Resolves once `check()` is true, testing every few milliseconds: for a state the test
 * waits to see (bytes reaching a server, a connection opening). Rejects with "<what>: not
 * seen within <ms> ms" after `ms` (default 10 000): a hang detector, not a speed assertion.
 */
export async function until(check: () => boolean, what = "the condition", ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not seen within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function describeArgs(args: unknown[]): string {
  if (args.length === 0) return "no arguments";
  return `(${args
    .map((arg) => {
      if (arg instanceof Error) return `${arg.name}${(arg as { code?: string }).code ? ` ${(arg as { code?: string }).code}` : ""}: ${arg.message}`;
      try {
        const text = JSON.stringify(arg);
        return text === undefined ? String(arg) : text.length > 120 ? `${text.slice(0, 117)}...` : text;
      } catch {
        return String(arg);
      }
    })
    .join(", ")})`;
}

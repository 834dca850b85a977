/**
 * Fuzzing the connection (issue 4): fast-check writes a server that answers every line
 * the client sends with a random reply, valid or not (right and wrong codes, multi-line
 * replies, a code change mid-reply, garbage, NUL, replies nobody asked for, 421, FIN, RST,
 * silence), and a client that starts a random mix of operations at once. Whatever the
 * server does: no exception escapes, nothing hangs, every operation settles exactly once
 * (with an SMTPError carrying code, command and temporary when it fails), `end` comes
 * once, `error` at most once, and nothing is left open.
 */
import { test } from "uvu";
import * as assert from "uvu/assert";
import fc from "fast-check";
import { SMTPConnection } from "../../lib/index.js";
import { startFaultServer, type Step } from "../helpers/fault-server.js";
import { settlesWithin } from "../helpers/callbacks.js";
import { assertNoLeaks, trackUnhandled } from "../helpers/leak-check.js";
import { seed } from "../helpers/random.js";
import { ENVELOPE, MESSAGE, assertNothingOpen, assertSMTPError, callbackOp, promiseOp, streamOp, type Op } from "../faults/harness.js";

const unhandled = trackUnhandled();

const CANNED = [
  "250 2.0.0 Ok\r\n",
  "250-fault.example.test\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000\r\n",
  "354 go ahead\r\n",
  "235 2.7.0 Authenticated\r\n",
  "334 VXNlcm5hbWU6\r\n",
  "221 2.0.0 Bye\r\n",
  "220 fault.example.test ESMTP\r\n",
  "550 5.1.1 No such user\r\n",
  "451 4.3.0 Try later\r\n",
  "421 4.3.2 Going away\r\n",
  "250-first\r\n550 second\r\n",
  "hello, not SMTP\r\n",
  "250 o\0k\r\n",
  "\r\n",
  "600 out of range\r\n",
  "250 Ok\r\n250 nobody asked for this\r\n",
  "250-unfinished",
  "250 ok\n",
];

/** One server action after reading a line. */
const action: fc.Arbitrary<Step> = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...CANNED).map((send): Step => ({ send })) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 100, max: 699 }), fc.constantFrom(" ", "-", ""), fc.string({ maxLength: 20 })).map(([code, sep, text]): Step => ({ send: `${code}${sep}${text.replace(/[\r\n]/g, "")}\r\n` })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((bytes): Step => ({ send: Buffer.from(bytes) })) },
  { weight: 1, arbitrary: fc.constant<Step>({ close: true }) },
  { weight: 1, arbitrary: fc.constant<Step>({ reset: true }) },
  { weight: 1, arbitrary: fc.constant<Step>({ stall: true }) },
);

/** The greeting (usually valid), then one action per line the client sends. */
const script = fc.tuple(fc.oneof({ weight: 5, arbitrary: fc.constant<Step>({ send: "220 fault.example.test ESMTP\r\n" }) }, { weight: 1, arbitrary: action }), fc.array(action, { maxLength: 14 })).map(([greeting, actions]) => [
  greeting,
  ...actions.flatMap((step): Step[] => [{ expect: () => true }, step]),
  { stall: true } as Step,
]);

type OpKind = "send" | "send(cb)" | "stream" | "reset" | "login" | "quit";
const ops = fc.array(fc.constantFrom<OpKind>("send", "send(cb)", "stream", "reset", "login", "quit"), { minLength: 1, maxLength: 5 });

function start(conn: SMTPConnection, kind: OpKind, i: number): Op {
  const label = `${kind} #${i}`;
  switch (kind) {
    case "send":
      return promiseOp(label, conn.send(ENVELOPE, MESSAGE));
    case "send(cb)":
      return callbackOp(label, (cb) => conn.send(ENVELOPE, MESSAGE, cb));
    case "stream": {
      const stream = conn.createSendStream(ENVELOPE);
      stream.end(MESSAGE);
      return streamOp(label, stream);
    }
    case "reset":
      return promiseOp(label, conn.reset());
    case "login":
      return callbackOp(label, (cb) => conn.login({ user: "user", pass: "secret" }, cb));
    case "quit":
      return promiseOp(label, conn.quit());
  }
}

test("a server answering with random replies: every operation settles once, end comes once, error at most once, nothing leaks", async () => {
  const seen = { resolved: 0, rejected: 0, codes: new Set<string>() };
  await fc.assert(
    fc.asyncProperty(script, ops, fc.boolean(), async (steps, kinds, withListener) => {
      const server = await startFaultServer(steps);
      const conn = new SMTPConnection({ host: server.host, port: server.port, greetingTimeout: 100, socketTimeout: 100, connectionTimeout: 1000 });
      const errors: unknown[] = [];
      if (withListener) conn.on("error", (err) => errors.push(err));
      let ends = 0;
      const ended = new Promise<void>((resolve) => conn.on("end", () => (ends++, resolve())));
      const before = unhandled.events.length;
      try {
        const all = [promiseOp("connect", conn.connect()), ...kinds.map((kind, i) => start(conn, kind, i))];
        const results = await settlesWithin(Promise.all(all.map((op) => op.settled)), 10_000, "every operation");
        conn.close();
        await settlesWithin(ended, 10_000, "end");
        await new Promise((resolve) => setTimeout(resolve, 2));
        results.forEach((result, i) => {
          assert.is(all[i]!.count(), 1, `${all[i]!.label} settles exactly once`);
          if (result.ok) seen.resolved++;
          else {
            seen.rejected++;
            assertSMTPError(result.error, all[i]!.label);
            seen.codes.add((result.error as { code: string }).code);
          }
        });
        assert.is(ends, 1, "end once");
        assert.ok(errors.length <= 1, "error at most once");
        assert.is(unhandled.events.length, before, "nothing unhandled");
      } finally {
        conn.close();
        await settlesWithin(server.close(), 10_000, "the fault server closing");
        await assertNothingOpen("fuzzed session");
      }
    }),
    { seed, numRuns: 120, endOnFailure: true },
  ).catch((err: Error) => {
    // fast-check's report names the counterexample; the assertion that failed is its cause.
    throw new Error(`${err.message}\n${(err.cause as Error | undefined)?.message ?? ""}`);
  });
  // The random servers must exercise both ends, or the property proves little.
  assert.ok(seen.resolved > 20 && seen.rejected > 20, `resolved ${seen.resolved}, rejected ${seen.rejected}`);
  assert.ok(seen.codes.size >= 3, `error codes seen: ${[...seen.codes].join(", ")}`);
  console.log(`fuzz: ${seen.resolved} operations resolved, ${seen.rejected} rejected with ${[...seen.codes].sort().join(", ")}`);
});

test("leaves no socket, timer or rejection behind", async () => {
  unhandled.assertNone();
  await assertNoLeaks();
});

test.run();

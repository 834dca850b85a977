/**
 * `smtp-wire probe host[:port]`: what a server offers, without sending anything. The
 * greeting, the EHLO keywords with their parameters, STARTTLS with the certificate
 * (subject, issuer, names, validity, and whether it verifies against the trusted CAs),
 * the keywords again over TLS, and the AUTH methods on offer.
 *
 * A certificate that does not verify is described rather than refused, and the exit
 * code says so (EXIT.CONNECTION, unless --no-tls-verify): a probe is how one finds out why.
 */
import type { Writable } from "node:stream";
import type { CommandLine } from "./arguments.js";
import { EXIT, exitCodeOf, type ExitCode } from "./exit-codes.js";
import { describeExtensions, StepSession, type TlsFacts } from "./step-session.js";
import { replyText, type SMTPError } from "../errors.js";
import type { Terminal } from "./terminal.js";
import { errorJson } from "./report.js";

/** What `probe --json` prints, as one JSON object. */
interface ProbeResult {
  server: string;
  greeting?: string;
  /** EHLO keywords with their parameters, before STARTTLS (or on the implicit-TLS connection). */
  ehlo?: string[];
  /** "implicit" (--tls-on-connect), "upgraded", "offered" (not used: --no-tls), "not offered". */
  tlsMode?: string;
  tls?: TlsFacts;
  /** EHLO keywords after STARTTLS. */
  ehloAfterTls?: string[];
  auth?: string[];
  error?: ReturnType<typeof errorJson>;
}

export async function probe(args: CommandLine, stdout: Writable, terminal: Terminal): Promise<ExitCode> {
  // --tls (requireTLS) is judged here, so the probe reports what it saw instead of failing.
  const session = new StepSession({ ...args.connection, requireTLS: false }, { inspectTls: true });
  const result: ProbeResult = { server: `${session.host}:${session.port}` };
  let code: ExitCode = EXIT.OK;
  try {
    await session.connect();
    result.greeting = replyText(session.greeting!);
    await session.hello();
    const offered = session.extensions.has("STARTTLS");
    await session.startTls();
    result.ehlo = describeExtensions(session.hellos[0]!);
    if (session.tls && session.hellos.length > 1) result.ehloAfterTls = describeExtensions(session.hellos[session.hellos.length - 1]!);
    result.tlsMode = args.connection.secure ? "implicit" : session.tls ? "upgraded" : offered ? "offered" : "not offered";
    result.tls = session.tls;
    result.auth = session.extensions.get("AUTH") ?? [];
    await session.quit();
  } catch (err) {
    session.close();
    result.error = errorJson(err as SMTPError);
    code = exitCodeOf(err as SMTPError);
  }
  if (code === EXIT.OK && args.connection.requireTLS && !result.tls) {
    code = EXIT.CONNECTION;
    terminal.line("smtp-wire: the server does not offer STARTTLS, which --tls requires");
  }
  if (code === EXIT.OK && result.tls && !result.tls.verified && args.connection.tls?.rejectUnauthorized !== false) {
    code = EXIT.CONNECTION;
    terminal.line(`smtp-wire: the certificate does not verify (${result.tls.verifyError}); --no-tls-verify accepts it`);
  }
  if (args.json) stdout.write(JSON.stringify(result) + "\n");
  else {
    stdout.write(describe(result));
    if (result.error) terminal.line(`smtp-wire: probe of ${result.server} failed: ${result.error.code} ${result.error.message}`);
  }
  return code;
}

const INDENT = "\n             ";

function describe(result: ProbeResult): string {
  const lines = [`server       ${result.server}`];
  if (result.greeting !== undefined) lines.push(`greeting     ${result.greeting.split("\n").join(INDENT)}`);
  if (result.ehlo) lines.push(`EHLO         ${result.ehlo.join(INDENT) || "(no keywords)"}`);
  if (result.tlsMode) lines.push(`TLS          ${result.tlsMode}`);
  if (result.tls) lines.push(...certificate(result.tls));
  if (result.ehloAfterTls) lines.push(`EHLO (TLS)   ${result.ehloAfterTls.join(INDENT) || "(no keywords)"}`);
  if (result.auth) lines.push(`AUTH         ${result.auth.join(" ") || "(none offered)"}`);
  return lines.join("\n") + "\n";
}

function certificate(tls: TlsFacts): string[] {
  return [
    `  protocol   ${tls.protocol} ${tls.cipher}`,
    `  subject    ${tls.subject}`,
    `  issuer     ${tls.issuer}`,
    ...(tls.subjectAltName ? [`  names      ${tls.subjectAltName}`] : []),
    `  valid      ${tls.validFrom} to ${tls.validTo}`,
    `  verified   ${tls.verified ? "yes" : `no (${tls.verifyError})`}`,
  ];
}

/**
 * `smtp-wire probe host[:port]`: what a server offers, without sending anything. The
 * greeting, the EHLO keywords with their parameters, STARTTLS with the certificate
 * (subject, issuer, names, validity, and whether it verifies against the trusted CAs),
 * the keywords again over TLS, and the AUTH methods on offer.
 *
 * A certificate that does not verify is described rather than refused, and the exit
 * code says so (EXIT.CONNECTION, unless --no-tls-verify): a probe is how one finds out why.
 * The connection does the work (its greeting, extensionsBeforeTls and tlsInfo); this file
 * only judges and prints what it saw.
 */
import type { Writable } from "node:stream";
import type { CommandLine } from "./arguments.js";
import { EXIT, exitCodeOf, type ExitCode } from "./exit-codes.js";
import { SMTPConnection } from "../connection.js";
import type { SMTPError } from "../errors.js";
import type { ExtensionsView, TlsInfo } from "../types.js";
import type { Terminal } from "./terminal.js";
import { errorJson } from "./report.js";

/** What the TLS handshake showed: the certificate is described, whether or not it verified. */
interface TlsFacts {
  protocol: string | null;
  cipher: string;
  /** True when the chain and the host name verified against the trusted CAs. */
  verified: boolean;
  /** Why it did not verify (e.g. "DEPTH_ZERO_SELF_SIGNED_CERT"). */
  verifyError?: string;
  subject: string;
  issuer: string;
  subjectAltName?: string;
  validFrom: string;
  validTo: string;
  fingerprint256: string;
}

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
  // --tls (requireTLS) is judged here, so the probe reports what it saw instead of failing;
  // a certificate that does not verify is accepted, so it can be described.
  const { connection } = args;
  const conn = new SMTPConnection({ ...connection, requireTLS: false, tls: { ...connection.tls, rejectUnauthorized: false } });
  const result: ProbeResult = { server: `${conn.host}:${conn.port}` };
  let code: ExitCode = EXIT.OK;
  try {
    await conn.connect();
    result.greeting = conn.greeting;
    const plaintext = conn.extensionsBeforeTls;
    result.ehlo = describeExtensions(plaintext ?? conn.extensions);
    if (plaintext) result.ehloAfterTls = describeExtensions(conn.extensions);
    const tls = conn.tlsInfo && tlsFacts(conn.tlsInfo);
    result.tlsMode = connection.secure ? "implicit" : tls ? "upgraded" : conn.extensions.has("STARTTLS") ? "offered" : "not offered";
    result.tls = tls;
    result.auth = conn.extensions.get("AUTH") ?? [];
    await conn.quit();
  } catch (err) {
    conn.close();
    // How far it got: the greeting, when the failure came after it.
    result.greeting = conn.greeting;
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

/** EHLO keywords with their parameters, one per line: "SIZE 10240000", "AUTH PLAIN LOGIN". */
function describeExtensions(extensions: ExtensionsView): string[] {
  return [...extensions].map(([keyword, params]) => [keyword, ...params].join(" "));
}

function tlsFacts(tls: TlsInfo): TlsFacts {
  const cert = tls.peerCertificate;
  const name = (entries: object | undefined) =>
    Object.entries(entries ?? {})
      .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`)
      .join(", ");
  return {
    protocol: tls.protocol,
    cipher: tls.cipher.name,
    verified: tls.authorized,
    verifyError: tls.authorized ? undefined : String(tls.authorizationError),
    subject: name(cert.subject),
    issuer: name(cert.issuer),
    subjectAltName: cert.subjectaltname,
    validFrom: new Date(cert.valid_from).toISOString(),
    validTo: new Date(cert.valid_to).toISOString(),
    fingerprint256: cert.fingerprint256,
  };
}

/**
 * What every benchmark client is given, the same for smtp-wire and Nodemailer so that
 * the two differ only in the library: connection options and the envelope.
 */

export interface BenchEnvelope {
  from: string;
  to: string[];
}

export const ENVELOPE: BenchEnvelope = { from: "sender@bench.example", to: ["rcpt@bench.example"] };

/** Plain SMTP on loopback; both libraries take these options under the same names. */
export function connectionOptions(port: number) {
  return {
    host: "127.0.0.1",
    port,
    secure: false,
    ignoreTLS: true,
    name: "bench.local",
    logger: false,
    connectionTimeout: 30_000,
    socketTimeout: 120_000,
  };
}

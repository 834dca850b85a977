/**
 * The shape every SASL mechanism has (RFC 4954): a first line for AUTH, then one answer
 * per 334 challenge. Mechanisms are pure: they never touch the socket, so the connection
 * drives them all the same way and masks what they send in the transcript.
 */
export interface AuthMechanism {
  /** SASL name as sent after AUTH. */
  readonly name: string;
  /** The AUTH command's argument (name and optional initial response). */
  start(): string;
  /** The answer to a 334 challenge (already base64-decoded), as the line to send. */
  next(challenge: Buffer): string;
}

export function base64(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** PLAIN (RFC 4616): authzid NUL authcid NUL password, sent as the initial response. */
import { base64, type AuthMechanism } from "./mechanism.js";

export function plain(user: string, pass: string): AuthMechanism {
  return {
    name: "PLAIN",
    start: () => `PLAIN ${base64(`\0${user}\0${pass}`)}`,
    next: () => "*",
  };
}

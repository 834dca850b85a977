/** CRAM-MD5 (RFC 2195): the user name and HMAC-MD5 of the server's challenge, keyed by the password. */
import { createHmac } from "node:crypto";
import { base64, type AuthMechanism } from "./mechanism.js";

export function cramMd5(user: string, pass: string): AuthMechanism {
  let answered = false;
  return {
    name: "CRAM-MD5",
    start: () => "CRAM-MD5",
    next(challenge) {
      if (answered) return "*";
      answered = true;
      const digest = createHmac("md5", pass).update(challenge).digest("hex");
      return base64(`${user} ${digest}`);
    },
  };
}

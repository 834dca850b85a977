/**
 * XOAUTH2 (Google's and Microsoft's OAuth 2.0 bearer mechanism). A refused token comes
 * back as a 334 carrying a JSON error; the client must answer with an empty line to get
 * the final 535, which the connection turns into one token renewal and retry.
 */
import { base64, type AuthMechanism } from "./mechanism.js";

export function xoauth2(user: string, accessToken: string): AuthMechanism {
  return {
    name: "XOAUTH2",
    start: () => `XOAUTH2 ${base64(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`)}`,
    next: () => "",
  };
}

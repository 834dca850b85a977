/**
 * LOGIN (draft-murchison-sasl-login): the user name, then the password, each answering a
 * 334. Servers word the prompts differently, so the order, not the text, decides.
 */
import { base64, type AuthMechanism } from "./mechanism.js";

export function login(user: string, pass: string): AuthMechanism {
  let step = 0;
  return {
    name: "LOGIN",
    start: () => "LOGIN",
    next: () => (step++ === 0 ? base64(user) : step === 2 ? base64(pass) : "*"),
  };
}

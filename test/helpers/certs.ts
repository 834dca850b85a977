/**
 * Certificates made at test time, so that TLS tests run with verification on and no key
 * or certificate is ever committed. The first call to getCerts() runs the `openssl`
 * command line in a fresh temporary directory (EC P-256 keys, so it takes a few tens of
 * milliseconds), reads everything into Buffers and removes the directory at once; later
 * calls in the same process return the same object.
 *
 * It deliberately makes only server-side material: the client under test trusts `ca`
 * (through its `tls: { ca }` option) and each key pair below fails verification for
 * exactly one reason.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A PEM private key and its PEM certificate, as `tls.createSecureContext` takes them. */
export interface KeyPair {
  key: Buffer;
  cert: Buffer;
}

export interface TestCerts {
  /** PEM certificate of the test CA: pass it as `tls: { ca }` to trust the CA-signed certs. */
  ca: Buffer;
  /** PEM private key of the test CA (to sign more certificates if a test needs one). */
  caKey: Buffer;
  /** Signed by `ca`; SAN DNS:localhost, DNS:mx.example.test, IP:127.0.0.1. Verifies. */
  server: KeyPair;
  /** Self-signed, same SANs as `server`: rejected with DEPTH_ZERO_SELF_SIGNED_CERT. */
  selfSigned: KeyPair;
  /** Signed by `ca`, SAN DNS:wrong.example.test only: rejected with ERR_TLS_CERT_ALTNAME_INVALID. */
  wrongHost: KeyPair;
  /** Signed by `ca`, same SANs as `server`, validity ended a day ago: rejected with CERT_HAS_EXPIRED. */
  expired: KeyPair;
  /** Same SANs as `server` but signed by another CA nobody trusts: UNABLE_TO_VERIFY_LEAF_SIGNATURE. */
  unknownCa: KeyPair;
}

/** The host names and address the `server` certificate is valid for. */
export const CERT_HOSTS = { dns: ["localhost", "mx.example.test"], ip: "127.0.0.1", wrongHost: "wrong.example.test" } as const;

const SERVER_SAN = "subjectAltName=DNS:localhost,DNS:mx.example.test,IP:127.0.0.1";

let cached: TestCerts | undefined;

/**
 * The test certificates, made on first use (synchronous) and cached for the process.
 * Throws if the `openssl` command line is missing or fails, with its stderr.
 */
export function getCerts(): TestCerts {
  if (!cached) cached = makeCerts();
  return cached;
}

function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "smtp-wire-certs-"));
  try {
    const file = (name: string): string => join(dir, name);
    let serial = 1000 + Math.floor(Math.random() * 1000);

    const newCa = (name: string, cn: string): void => {
      openssl(dir, [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", file(`${name}.key`), "-out", file(`${name}.crt`), "-days", "3650",
        "-subj", `/CN=${cn}`,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      ]);
    };
    // A leaf signed by `caName`, with the given SAN line; negative days make it expired.
    const newLeaf = (name: string, caName: string, san: string, days = 825): KeyPair => {
      openssl(dir, [
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${name}`,
      ]);
      writeFileSync(file(`${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n${san}\n`);
      openssl(dir, [
        "x509", "-req", "-in", file(`${name}.csr`), "-CA", file(`${caName}.crt`), "-CAkey", file(`${caName}.key`),
        "-set_serial", String(serial++), "-days", String(days), "-extfile", file(`${name}.ext`), "-out", file(`${name}.crt`),
      ]);
      return { key: readFileSync(file(`${name}.key`)), cert: readFileSync(file(`${name}.crt`)) };
    };

    newCa("ca", "smtp-wire test CA");
    newCa("other-ca", "smtp-wire untrusted CA");
    const server = newLeaf("localhost", "ca", SERVER_SAN);
    const wrongHost = newLeaf("wrong.example.test", "ca", "subjectAltName=DNS:wrong.example.test");
    const expired = newLeaf("expired", "ca", SERVER_SAN, -1);
    const unknownCa = newLeaf("unknown-ca", "other-ca", SERVER_SAN);

    openssl(dir, [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
      "-keyout", file("self.key"), "-out", file("self.crt"), "-days", "825", "-subj", "/CN=localhost",
      "-addext", SERVER_SAN,
    ]);
    const selfSigned = { key: readFileSync(file("self.key")), cert: readFileSync(file("self.crt")) };

    return {
      ca: readFileSync(file("ca.crt")),
      caKey: readFileSync(file("ca.key")),
      server,
      selfSigned,
      wrongHost,
      expired,
      unknownCa,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`openssl ${args[0]} failed while making test certificates${stderr ? `: ${stderr}` : ""}`, { cause: err });
  }
}

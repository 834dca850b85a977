/**
 * Nodemailer-style code, written as for `nodemailer/lib/smtp-connection` and its typings,
 * compiled with `tsc --strict` against smtp-wire's emitted declarations (not its sources)
 * by test/typecheck.test.ts. It is never run. Each `@ts-expect-error` line must fail to
 * compile: the types are strict where Nodemailer's are.
 */
import SMTPConnection, { SMTPError, type SendInfo, type Envelope } from "smtp-wire";

const connection = new SMTPConnection({ host: "smtp.example.com", port: 587, secure: false, requireTLS: true, logger: false, name: "client.example.com" });

// Events, typed: the error listener gets an SMTPError.
connection.on("error", (err: SMTPError) => console.error(err.code, err.responseCode, err.response, err.command));
connection.once("connect", () => console.log("connected"));
connection.on("end", () => console.log("closed"));
// @ts-expect-error an error listener does not get a string
connection.on("error", (err: string) => err.toUpperCase());
// @ts-expect-error 'end' has no argument
connection.on("end", (reason: string) => reason);

// Callbacks as Nodemailer's typings declare them.
const onConnect = (err?: SMTPError): void => {
  if (err) console.error(err.code);
};
connection.connect(onConnect);

connection.connect((err) => {
  if (err) {
    const code: string = err.code; // err is an SMTPError
    console.error(code);
    return;
  }
  connection.login({ user: "me", pass: "secret" }, (err?: SMTPError | null) => {
    if (err) return console.error(err.responseCode);
    const envelope: Envelope = { from: "me@example.com", to: ["you@example.org"], size: 1024, requireTLSExtensionEnabled: true, dsn: { notify: ["FAILURE"], orcpt: "rfc822;you@example.org" } };
    connection.send(envelope, "Subject: hi\r\n\r\nHello\r\n", (err: SMTPError | null, info: SendInfo) => {
      if (err) return console.error(err.code);
      // The result is there on success: no `info?.`.
      const accepted: string[] = info.accepted;
      const ehlo: string[] = info.ehlo;
      console.log(accepted, info.rejected, info.response, info.messageSize, ehlo);
      connection.reset((err, done) => {
        if (!err) console.log(done === true);
        connection.quit();
      });
    });
  });
});

// Nodemailer's null sender and a string size.
const nullSender: Envelope = { from: false, to: "you@example.org", size: "2048" };
void nullSender;

// An absent extension is undefined in the types.
const size: string[] | undefined = connection.extensions.SIZE;
// @ts-expect-error an extension may be absent: it is not always a string[]
const pipelining: string[] = connection.extensions.PIPELINING;
void size;
void pipelining;

// Nodemailer's public properties.
const stage: "init" | "connected" = connection.stage;
const flags: boolean[] = [connection.destroyed, connection.secureConnection, connection.alreadySecured, connection.allowInternalNetworkInterfaces, connection.secure, connection.authenticated];
const names: (string | false)[] = [connection.servername, connection.version, connection.name, connection.host, connection.lastServerResponse];
connection.logger.info({ tnx: "app" }, "hello %s", "world");
const methods: string[] = [...connection.customAuth.keys()];
const cipher: string | undefined = connection.tlsInfo?.cipher.name;
void stage;
void flags;
void names;
void methods;
void cipher;

// The Promise form, smtp-wire's own.
async function promised(): Promise<SendInfo> {
  await connection.connect();
  return connection.send({ from: "me@example.com", to: "you@example.org" }, Buffer.from("Subject: x\r\n\r\nx\r\n"));
}
void promised;

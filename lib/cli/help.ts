/**
 * The text of `smtp-wire --help`: every option, the exit codes, the environment. The
 * README's "Command line" section says the same at more length.
 */
import { PASSWORD_VARIABLE, PHASES, AUTH_METHODS } from "./arguments.js";
import { EXIT } from "./exit-codes.js";

export const HELP = `smtp-wire: send mail and look at SMTP/LMTP servers

Usage:
  smtp-wire send [options] [FILE.eml ... | -]   send each message (standard input with - or no FILE)
  smtp-wire probe [options] host[:port]         show what the server offers: greeting, EHLO,
                                                STARTTLS and its certificate, AUTH methods
  smtp-wire --help | --version

Server and TLS:
  -s, --server host[:port]   server (default localhost); [::1]:25 for IPv6
  -p, --port N               port (default 587, or 465 with --tls-on-connect)
      --tls                  require STARTTLS (fail if the server does not offer it)
      --tls-optional         try STARTTLS; go on without TLS if the upgrade fails
      --no-tls               never use STARTTLS
                             (none of the three: STARTTLS whenever the server offers it)
      --tls-on-connect       TLS from the first byte (implicit TLS, port 465)
      --no-tls-verify        accept a certificate that does not verify (--tls-verify: the default)
      --ca FILE              trust the CA certificates in FILE (PEM)
      --ehlo NAME            name to send with EHLO/LHLO
      --lmtp                 speak LMTP (LHLO; one reply per recipient)
      --timeout SECONDS      connection, greeting and inactivity timeouts

Authentication:
      --auth [TYPE]          authenticate: ${AUTH_METHODS.join(", ")} (default: the best offered)
  -u, --user NAME            user name (implies --auth)
      --password PASS        password (for XOAUTH2, the access token); else $${PASSWORD_VARIABLE},
                             else asked on the terminal without echo. Never shown (-v masks it)

Envelope and message:
  -f, --from ADDRESS         sender (default: the From: header of each message; "" for <>)
  -t, --to ADDRESS[,...]     recipients, repeatable (default: To:, Cc: and Bcc: of each message;
                             then Bcc: is removed from the header before sending)
      --8bitmime             BODY=8BITMIME
      --smtputf8             SMTPUTF8
      --dsn-notify LIST      NEVER, or SUCCESS,FAILURE,DELAY
      --bdat                 BDAT (CHUNKING) instead of DATA when the server offers it
      --connections N        send over N connections at once (a pool; default 1, in file order)
      --quit-after PHASE     stop and QUIT after ${PHASES.join(", ")}; sends no message

Output:
  -v, --verbose              the SMTP transcript on standard error (secrets masked)
      --json                 one JSON object per message on standard output, and nothing else
                             (progress lines, shown on a terminal, are left out)

Exit codes:
  ${EXIT.OK}  every message sent to every recipient (probe: reached, and TLS verified if used)
  ${EXIT.OTHER}  another failure (a message source that failed)
  ${EXIT.USAGE}  bad usage or an unreadable message: nothing was sent for it
  ${EXIT.CONNECTION}  connection or TLS failure (refused, timeout, closed, certificate)
  ${EXIT.AUTH}  authentication failed
  ${EXIT.SOME_RECIPIENTS_REFUSED}  a message was sent, but some of its recipients were refused
  ${EXIT.MESSAGE_REFUSED}  a message was refused (sender, every recipient, or its content)
  With several messages, the most serious wins: ${EXIT.USAGE}, ${EXIT.CONNECTION}, ${EXIT.AUTH}, ${EXIT.OTHER}, ${EXIT.MESSAGE_REFUSED}, ${EXIT.SOME_RECIPIENTS_REFUSED}.
`;

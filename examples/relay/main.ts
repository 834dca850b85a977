/**
 * The relay as a program:
 *
 *   node dist/examples/relay/main.js --listen 127.0.0.1:2525 --upstream mx.example.com:25
 *
 * Options: --listen [host:]port (default 127.0.0.1:2525; port 0 picks a free one),
 * --upstream host[:port] (required; port 25 by default), --name (EHLO name used
 * upstream), --no-forward-client (no XCLIENT/XFORWARD), --upstream-tls (STARTTLS
 * required upstream), --size bytes (SIZE advertised inbound), --max-connections N
 * (upstream connections, so inbound sessions served at once; default 100). Prints
 * `relay listening on host:port` once it accepts connections; stops on SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";
import { createRelay } from "./relay.js";

function hostAndPort(value: string, defaultPort: number): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(value);
  if (!match) throw new Error(`not host[:port]: ${value}`);
  return { host: match[1] ?? (match[2] || "127.0.0.1"), port: match[3] === undefined ? defaultPort : Number(match[3]) };
}

const { values } = parseArgs({
  options: {
    listen: { type: "string", default: "127.0.0.1:2525" },
    upstream: { type: "string" },
    name: { type: "string" },
    "no-forward-client": { type: "boolean", default: false },
    "upstream-tls": { type: "boolean", default: false },
    size: { type: "string" },
    "max-connections": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});

if (values.help || !values.upstream) {
  process.stderr.write("usage: main.js --upstream host[:port] [--listen [host:]port] [--name ehlo-name] [--no-forward-client] [--upstream-tls] [--size bytes] [--max-connections N]\n");
  process.exit(values.help ? 0 : 2);
}

const upstream = hostAndPort(values.upstream, 25);
const listen = /^\d+$/.test(values.listen) ? { host: "127.0.0.1", port: Number(values.listen) } : hostAndPort(values.listen, 2525);
const relay = createRelay({
  upstream: { ...upstream, name: values.name, requireTLS: values["upstream-tls"], ...(values["max-connections"] ? { maxConnections: Number(values["max-connections"]) } : {}) },
  forwardClient: !values["no-forward-client"],
  server: values.size ? { size: Number(values.size) } : {},
  onUpstreamError: (err) => process.stderr.write(`upstream: ${err.message}\n`),
});
relay.server.on("error", (err) => process.stderr.write(`relay: ${err.message}\n`));
const address = await relay.listen(listen.port, listen.host);
process.stdout.write(`relay listening on ${address.address}:${address.port}\n`);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => void relay.close().then(() => process.exit(0)));

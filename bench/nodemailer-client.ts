/**
 * Nodemailer's SMTPConnection with Promises, for comparison only: the same options and
 * the same calls as smtp-wire's, so the two differ only in the library.
 */
import SMTPConnection from "nodemailer/lib/smtp-connection";
import type { Readable } from "node:stream";
import { connectionOptions, type BenchEnvelope } from "./options.js";

export interface NodemailerSendInfo {
  messageSize?: number;
  response?: string;
}

export class NodemailerClient {
  readonly connection: SMTPConnection;

  private constructor(connection: SMTPConnection) {
    this.connection = connection;
  }

  static async open(port: number): Promise<NodemailerClient> {
    const connection = new SMTPConnection(connectionOptions(port));
    await new Promise<void>((resolve, reject) => {
      connection.once("error", reject);
      connection.connect(() => {
        connection.off("error", reject);
        resolve();
      });
    });
    connection.on("error", () => {
      /* reported through the pending send's callback */
    });
    return new NodemailerClient(connection);
  }

  send(envelope: BenchEnvelope, message: Buffer | Readable): Promise<NodemailerSendInfo> {
    return new Promise((resolve, reject) => {
      this.connection.send(envelope, message, (err, info) => (err ? reject(err) : resolve(info as NodemailerSendInfo)));
    });
  }

  quit(): void {
    this.connection.quit();
  }
}

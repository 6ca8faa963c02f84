/**
 * A webhook receiver on 127.0.0.1 for the tests: it keeps every delivery and answers each POST with the next
 * status of its list. Closed after each test.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  /** When its body had arrived. */
  at: Date;
}

/** A receiver on 127.0.0.1 that answers each POST with the next status of `answers` (the last one repeats). */
export class Receiver {
  readonly deliveries: Delivery[] = [];
  private constructor(
    private readonly server: Server,
    private readonly answers: number[],
  ) {}

  static async start(answers: number[] = [204]): Promise<Receiver> {
    const server = createServer();
    const receiver = new Receiver(server, answers);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        receiver.deliveries.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: new Date() });
        res.statusCode = receiver.answers[Math.min(receiver.deliveries.length - 1, receiver.answers.length - 1)]!;
        res.end();
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    receivers.push(receiver);
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/hooks/token-expiry`;
  }

  close(): void {
    this.server.closeAllConnections();
    this.server.close();
  }
}

const receivers: Receiver[] = [];
afterEach(() => {
  for (const receiver of receivers.splice(0)) receiver.close();
});


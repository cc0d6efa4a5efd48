import net from 'node:net';
import type { CodeDelivery, Notifier, PasswordCall } from '../authz/notifier.js';

/**
 * How first codes reach the simulated payers' terminals during the bench.
 *
 * In production a first code leaves the service through a `Notifier` (SMS, voice, console). The
 * bench server installs `CodeFeedNotifier`: it appends `<paymentId> <firstCode>\n` to a buffer
 * and writes the buffer once per event-loop turn (setImmediate) to the load generator's TCP
 * connection on 127.0.0.1 — no extra RPC per authorization, no per-code syscall (a batch of
 * 1000 payments is one write of ~42 KB). The load generator's `CodeFeedReader` matches codes to
 * the payment ids it gets back from CreatePayment, whichever arrives first.
 *
 * With `--workers N` every worker has its own notifier and port; the reader connects to all of
 * them (`CodeFeedReader.connect`) and takes each code from whichever connection delivers it.
 *
 * The cost that stays on the server (string concatenation, one write per loop turn) is in the
 * measured server CPU; it is far below an SMS gateway call, and below GetChallenge (one more
 * RPC per authorization), the alternative the issue mentions.
 */

/** Codes kept for payments nobody asked about yet (bounded: a stuck reader cannot eat memory). */
export const unclaimedCodesMax = 1_000_000;
/** How long the load generator waits for a first code after CreatePayment answered, milliseconds. */
export const codeWaitMsMax = 10_000;

export class CodeFeedNotifier implements Notifier {
  readonly channel = 'CONSOLE';
  private readonly sockets = new Set<net.Socket>();
  private buffer = '';
  private scheduled = false;
  delivered = 0;

  private constructor(private readonly server: net.Server) {
    server.on('connection', (socket) => {
      socket.setNoDelay(true);
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  static async listen(): Promise<{ notifier: CodeFeedNotifier; port: number }> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // exclusive: in a cluster worker (`--workers N`) a port of its own; without it every worker's
      // listen(0) would share one port through the primary and the feed would reach one of them.
      server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => resolve());
    });
    return { notifier: new CodeFeedNotifier(server), port: (server.address() as net.AddressInfo).port };
  }

  async deliverFirstCode(delivery: CodeDelivery): Promise<void> {
    this.delivered += 1;
    this.buffer += `${delivery.paymentId} ${delivery.firstCode}\n`;
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  /** The bench's payers never need a voice call (their policy asks for the second code only). */
  async callForPassword(call: PasswordCall): Promise<void> {
    throw new Error(`assertion failed: the bench does not simulate voice calls (payment ${call.paymentId})`);
  }

  private flush(): void {
    this.scheduled = false;
    const text = this.buffer;
    this.buffer = '';
    for (const socket of this.sockets) socket.write(text);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The load generator's end of the feed: `take(paymentId)` resolves with that payment's first code. */
export class CodeFeedReader {
  private readonly codes = new Map<string, string>();
  private readonly waiters = new Map<string, { resolve(code: string): void; reject(error: Error): void; timer: NodeJS.Timeout }>();

  private constructor(private readonly sockets: readonly net.Socket[]) {
    for (const socket of sockets) {
      // A line never spans two connections: each keeps its own unfinished line.
      const line = { partial: '' };
      socket.setEncoding('latin1');
      socket.on('data', (chunk: string) => this.receive(line, chunk));
    }
  }

  /** One reader over the server's feed, or every worker's (a code is taken from whichever delivers it). */
  static async connect(ports: readonly number[]): Promise<CodeFeedReader> {
    return new CodeFeedReader(await Promise.all(ports.map(connectFeed)));
  }

  private receive(line: { partial: string }, chunk: string): void {
    const text = line.partial + chunk;
    let start = 0;
    for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
      const space = text.indexOf(' ', start);
      const paymentId = text.slice(start, space);
      const code = text.slice(space + 1, end);
      start = end + 1;
      const waiter = this.waiters.get(paymentId);
      if (waiter !== undefined) {
        this.waiters.delete(paymentId);
        clearTimeout(waiter.timer);
        waiter.resolve(code);
      } else if (this.codes.size < unclaimedCodesMax) {
        this.codes.set(paymentId, code);
      }
    }
    line.partial = text.slice(start);
  }

  /** The first code of a payment this process created; rejects after `codeWaitMsMax`. */
  take(paymentId: string): Promise<string> | string {
    const code = this.codes.get(paymentId);
    if (code !== undefined) {
      this.codes.delete(paymentId);
      return code;
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(paymentId);
        reject(new Error(`no first code for payment ${paymentId} within ${codeWaitMsMax} ms`));
      }, codeWaitMsMax);
      this.waiters.set(paymentId, { resolve, reject, timer });
    });
  }

  /** Drops a code that will never be asked for (its payment failed after the code went out). */
  forget(paymentId: string): void {
    this.codes.delete(paymentId);
  }

  get unclaimed(): number {
    return this.codes.size;
  }

  close(): void {
    for (const waiter of this.waiters.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new Error('code feed closed'));
    }
    this.waiters.clear();
    for (const socket of this.sockets) socket.destroy();
  }
}

function connectFeed(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

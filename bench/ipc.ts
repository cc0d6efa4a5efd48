import type { ChildProcess } from 'node:child_process';

/**
 * Request/reply over a forked child's IPC channel (bench control only: never on the measured
 * path). The parent calls `ipc.call(type, body)`; the child answers with `serveIpc(handlers)`.
 */

interface Request {
  readonly kind: 'request';
  readonly id: number;
  readonly type: string;
  readonly body: unknown;
}
interface Reply {
  readonly kind: 'reply';
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}
/** A message the child sends on its own (its `ready` announcement). */
export interface Announcement {
  readonly kind: 'announce';
  readonly type: string;
  readonly body: unknown;
}

/** Longest wait for a reply, milliseconds, unless a call names its own. */
export const ipcReplyTimeoutMsDefault = 120_000;

export class IpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private readonly announcements = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** Announcements that arrived before anyone waited for them. */
  private readonly heard = new Map<string, unknown>();
  private exitError: Error | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly name: string,
  ) {
    child.on('message', (message: Reply | Announcement) => {
      if (message.kind === 'announce') {
        const waiter = this.announcements.get(message.type);
        if (waiter === undefined) this.heard.set(message.type, message.body);
        else waiter.resolve(message.body);
        this.announcements.delete(message.type);
        return;
      }
      const waiter = this.pending.get(message.id);
      if (waiter === undefined) return;
      this.pending.delete(message.id);
      clearTimeout(waiter.timer);
      if (message.ok) waiter.resolve(message.value);
      else waiter.reject(new Error(`${name}: ${message.error ?? 'failed'}`));
    });
    child.once('exit', (code, signal) => {
      this.exitError = new Error(`${name} exited (${signal ?? `code ${code}`})`);
      for (const waiter of this.pending.values()) {
        clearTimeout(waiter.timer);
        waiter.reject(this.exitError);
      }
      this.pending.clear();
      for (const waiter of this.announcements.values()) waiter.reject(this.exitError);
      this.announcements.clear();
    });
  }

  /** Resolves with the body of the child's announcement `type` (e.g. `ready`). */
  announced<T>(type: string, timeoutMs: number): Promise<T> {
    if (this.heard.has(type)) {
      const body = this.heard.get(type);
      this.heard.delete(type);
      return Promise.resolve(body as T);
    }
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`)), timeoutMs);
      this.announcements.set(type, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  call<T>(type: string, body: unknown = {}, timeoutMs = ipcReplyTimeoutMsDefault): Promise<T> {
    if (this.exitError !== undefined) return Promise.reject(this.exitError);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${this.name}: no reply to "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: (v) => resolve(v as T), reject, timer });
      this.child.send({ kind: 'request', id, type, body } satisfies Request);
    });
  }
}

export type Handlers = Record<string, (body: never) => unknown>;

/** In the child: answers the parent's calls; exits when the parent goes away. */
export function serveIpc(handlers: Handlers): void {
  if (process.send === undefined) throw new Error('assertion failed: this process must be forked with an IPC channel (run `npm run bench`)');
  process.on('message', (message: Request) => {
    if (message?.kind !== 'request') return;
    const handler = handlers[message.type];
    const reply = (r: Omit<Reply, 'kind' | 'id'>) => process.send?.({ kind: 'reply', id: message.id, ...r } satisfies Reply);
    if (handler === undefined) {
      reply({ ok: false, error: `unknown request ${message.type}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message.body as never))
      .then(
        (value) => reply({ ok: true, value }),
        (error: unknown) => reply({ ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
      );
  });
  // The parent died or closed the channel: nothing left to serve.
  process.on('disconnect', () => process.exit(0));
}

export function announce(type: string, body: unknown): void {
  process.send?.({ kind: 'announce', type, body } satisfies Announcement);
}

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The real reference bank, `countersign bank-frontend --port 0` (demo card table, fresh key), as a process. */

/** Longest wait for the bank to print its ready line, or to exit. */
export const bankProcessWaitMsMax = 30_000;

export interface BankProcess {
  readonly address: string;
  /** Everything it printed (stdout and stderr), for the no-card-data scan. */
  output(): string;
  stop(): Promise<void>;
}

export async function startBankProcess(): Promise<BankProcess> {
  const cli = fileURLToPath(new URL('../../services/cli.ts', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, ['--import=tsx', cli, 'bank-frontend', '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bank-frontend not ready in ${bankProcessWaitMsMax} ms: ${out}`)), bankProcessWaitMsMax);
    const take = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bank-frontend exited (${code}): ${out}`));
    });
  });
  return {
    address,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), bankProcessWaitMsMax);
      await exited;
      clearTimeout(timer);
    },
  };
}

import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { ManagedProcess, runToEnd } from './processes.js';
import { scanLogs } from './secret-scan.js';

// Issue 15: the secret scan must read what `serve` and the bridge print on their console. Every
// child the reliability suite starts goes through processes.ts, which appends its stdout and
// stderr to `<logDir>/<name>.log`; the runner scans every file under the log directory. These
// start real child processes that print secrets on stdout and stderr, stop them the way the
// scenarios do, and run the runner's scan over the log directory.

/** A child that prints the secrets in SECRET_OUT (stdout) and SECRET_ERR (stderr), then `ready`, then waits to be stopped. */
const printer =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the child's own source, run with node -e
  'process.stderr.write(`warn ${process.env.SECRET_ERR}\\n`); process.stdout.write(`token ${process.env.SECRET_OUT}\\nready\\n`); setInterval(() => undefined, 1000);';

function secrets(): { out: string; err: string } {
  return { out: `cs_admin_${randomBytes(24).toString('base64url')}`, err: `cs_telco_${randomBytes(24).toString('base64url')}` };
}

test("a secret a long-running child prints on its stdout or stderr is in its log, and the runner's scan finds it there", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-console-scan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logDir = join(dir, 'logs');
  const s = secrets();
  const child = new ManagedProcess({
    name: 'authz',
    command: process.execPath,
    args: ['-e', printer],
    env: { SECRET_OUT: s.out, SECRET_ERR: s.err },
    logDir: join(logDir, 'world'),
    readyPattern: /^ready$/m,
  });
  await child.start();
  await child.close();
  const log = readFileSync(join(logDir, 'world', 'authz.log'), 'utf8');
  t.true(log.includes(`token ${s.out}\n`), 'stdout is in the log');
  t.true(log.includes(`warn ${s.err}\n`), 'stderr is in the log');
  const scan = scanLogs(dir, new Set([s.out, s.err]), [logDir]);
  t.is(scan.files, 1);
  // stdout and stderr are two pipes: which line each secret lands on is not fixed, that both are found is.
  t.is(scan.findings.length, 2);
  t.true(
    scan.findings.every((f) => /^logs\/world\/authz\.log:[123]: a secret of 41 characters a scenario registered$/.test(f)),
    scan.findings.join('; '),
  );
});

test("a secret a run-to-end child (reconcile, a refused start) prints is found by the runner's scan", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-console-scan-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logDir = join(dir, 'logs');
  const s = secrets();
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the child's own source, run with node -e
  const exits = 'process.stdout.write(`key ${process.env.SECRET_OUT}\\n`); process.stderr.write(`error ${process.env.SECRET_ERR}\\n`); process.exitCode = 3;';
  const run = await runToEnd(
    { name: 'reconcile', command: process.execPath, args: ['-e', exits], env: { SECRET_OUT: s.out, SECRET_ERR: s.err }, logDir },
    10_000,
  );
  t.is(run.code, 3);
  t.is(run.stdout, `key ${s.out}\n`);
  const scan = scanLogs(dir, new Set([s.out, s.err]), [logDir]);
  t.is(scan.findings.length, 2);
  t.true(
    scan.findings.every((f) => /^logs\/reconcile\.log:[12]: a secret of 41 characters a scenario registered$/.test(f)),
    scan.findings.join('; '),
  );
});

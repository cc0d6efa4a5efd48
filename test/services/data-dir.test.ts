import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { pino } from 'pino';
import { InboxNotifier } from '../../authz/notifier.js';
import { EmbeddedLedger } from '../../ledger/embedded/engine.js';
import { createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';

/** Permission bits of every entry under `dir` (relative path → octal string), the directory itself as '.'. */
function modes(dir: string): Record<string, string> {
  const out: Record<string, string> = { '.': (statSync(dir).mode & 0o777).toString(8) };
  const walk = (sub: string) => {
    for (const entry of readdirSync(join(dir, sub), { withFileTypes: true })) {
      const rel = sub === '' ? entry.name : `${sub}/${entry.name}`;
      out[rel] = (statSync(join(dir, rel)).mode & 0o777).toString(8);
      if (entry.isDirectory()) walk(rel);
    }
  };
  walk('');
  return out;
}

function scratch(t: { teardown: (f: () => void) => void }): string {
  const base = mkdtempSync(join(tmpdir(), 'cs-data-dir-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  return base;
}

test('serve on embedded defaults keeps its data directory owner-only: every directory 0700, every file 0600 (keys, directory, payments, ledger)', async (t) => {
  const dataDir = join(scratch(t), 'data');
  const app = await createApp({ config: { ...loadConfig({}), dataDir }, notifier: new InboxNotifier(), logger: pino({ level: 'silent' }) });
  await app.close();
  const all = modes(dataDir);
  t.true(Object.keys(all).some((p) => p.startsWith('ledger/')) && Object.keys(all).some((p) => p.startsWith('payments/')), JSON.stringify(all));
  for (const [path, mode] of Object.entries(all)) {
    const isDir = statSync(join(dataDir, path)).isDirectory();
    t.is(mode, isDir ? '700' : '600', `${path} is ${mode}`);
  }
});

test('an embedded ledger directory left 0755 / 0644 by an earlier version is made owner-only when it is opened', async (t) => {
  const dir = join(scratch(t), 'ledger');
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  const first = await EmbeddedLedger.open({ dataDir: dir });
  await first.close();
  writeFileSync(join(dir, 'stray-note.txt'), randomBytes(4).toString('hex'), { mode: 0o644 });
  for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o644);
  chmodSync(dir, 0o755);
  const reopened = await EmbeddedLedger.open({ dataDir: dir });
  await reopened.close();
  const all = modes(dir);
  t.is(all['.'], '700');
  for (const [path, mode] of Object.entries(all)) if (path !== '.') t.is(mode, '600', `${path} is ${mode}`);
});

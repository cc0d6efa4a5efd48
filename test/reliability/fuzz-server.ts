/**
 * The fuzz scenario's server as its own process (so a crash is a crash, not the runner's):
 * the production wiring (`createApp` + `startServers` on 127.0.0.1:0) with in-process stores,
 * the embedded ledger journaled under the data dir, a clock the parent can move forward (IPC
 * `{ advanceClockMs }`, to expire challenges without waiting) and its pino log in a file.
 * Started by fuzz.ts with an IPC channel; answers `{ ready: { grpcPort, connectPort } }`.
 *
 * argv: <dataDir> <logFile> <adminKey> <codeTtlMs>
 */
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { InboxNotifier } from '../../authz/notifier.js';
import { createApp } from '../../services/app.js';
import { loadConfig } from '../../services/config.js';
import { startServers } from '../../services/server.js';

const [dataDir, logFile, adminKey, codeTtlText] = process.argv.slice(2);
if (dataDir === undefined || logFile === undefined || adminKey === undefined || codeTtlText === undefined || process.send === undefined) {
  console.error('usage (with an IPC channel): fuzz-server.ts <dataDir> <logFile> <adminKey> <codeTtlMs>');
  process.exit(2);
}

let offsetMs = 0;
const now = (): number => Date.now() + offsetMs;
const destination = pino.destination({ dest: logFile, sync: false, mkdir: true });
const logger = pino({ level: 'debug', base: { service: 'countersign-authz-fuzz' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
const config = { ...loadConfig({}), dataDir, masterKey: randomBytes(32).toString('base64'), adminKey };
const app = await createApp({
  config,
  memoryDirectory: true,
  memoryStore: true,
  notifier: new InboxNotifier(),
  logger,
  now,
  limits: { codeTtlMs: Number(codeTtlText), reservationGraceSeconds: 60 },
});
const servers = await startServers(app, { host: '127.0.0.1', grpcPort: 0, connectPort: 0, tls: null });

process.on('message', (message: { advanceClockMs?: number }) => {
  if (typeof message.advanceClockMs === 'number') {
    offsetMs += message.advanceClockMs;
    process.send!({ clockAdvanced: offsetMs });
  }
});

async function stop(): Promise<void> {
  await servers.close();
  await app.close();
  destination.flushSync();
  process.exit(0);
}
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
process.once('disconnect', () => void stop()); // the parent is gone
process.send({ ready: { grpcPort: servers.grpcPort, connectPort: servers.connectPort } });

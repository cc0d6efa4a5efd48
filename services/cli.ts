#!/usr/bin/env node
/**
 * The `countersign` command line: serve, demo, payer tools, reconcile.
 */
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { deriveSecondCode, secondCodeSuite } from '../authz/codes/challenge.js';
import { base32Decode } from '../authz/codes/secret.js';
import { reconcile } from '../authz/reconcile.js';
import { createApp, prepareKeys } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { isWorker, joinPrimary, parseWorkers, startPrimary, workersRefusal } from './workers.js';
import { runDemo } from './demo.js';
import { openLedger } from './ledger.js';
import { runLedgerDemo } from './ledger-demo.js';
import { runBankFrontEnd } from './bank/main.js';
import { startServers } from './server.js';
import { authorizerVelocityCommand } from './authorizers/velocity.js';
import { freePort, startBridge, telcoSettings, type TelcoSettings } from './telco.js';

const usage = `usage: countersign <command> [options]

commands:
  serve [--with-bridge] [--workers N]
                        run the authorization service: gRPC (grpc-js, health, reflection) and
                        Connect/gRPC-Web (connect-node) on the configured ports; --with-bridge also
                        runs the telco bridge (SMS over SMPP, calls over TwiML) in this process;
                        --workers N runs N processes behind the same ports (needs Redis and
                        TigerBeetle: the embedded data directory belongs to one process)
  telco-bridge          run the telco bridge as its own process (COUNTERSIGN_AUTHZ_ADDRESS, COUNTERSIGN_TELCO_KEY)
  demo                  serve in process and walk a merchant and a payer through payments:
                        frictionless, second code (wrong then right), declined, insufficient funds
  payer derive          compute a second code as a payer's terminal does:
                          --secret BASE32 --first-code 8DIGITS --amount MINOR --currency USD --payee HEX32
  reconcile             rebuild payment states from the ledger (the source of truth) and report
  ledger-demo [--memory]  reserve / post / void / expire straight on the ledger
  authorizer-velocity [--host 127.0.0.1] [--port N (0 = free)] [--max-per-hour N (5)] [--factor SECOND_CODE]
                        an example authorizer plugin (gRPC AuthorizerService): more than N payment
                        requests per payer within a sliding hour require the factor (COUNTERSIGN_AUTHORIZERS)
  bank-frontend [--host 127.0.0.1] [--port N (0 = free)] [--cards FILE.json] [--key-file FILE]
                        the reference bank front-end (M5 card + PIN decisions, gRPC BankFrontEndService);
                        without --cards a demo card table (services/bank/README.md)
  help                  this text

environment (all optional; see README "Configuration"):
  COUNTERSIGN_DATA_DIR            data directory: ledger journal, directory, keys (default ./.data)
  COUNTERSIGN_REDIS_URL           Redis for payments, idempotency, counters and the directory
  COUNTERSIGN_REDIS_CLUSTER       a Redis Cluster instead: seed nodes host:port,host:port,...
  COUNTERSIGN_TB_ADDRESSES        TigerBeetle replica addresses, comma-separated
  COUNTERSIGN_TB_CLUSTER_ID       TigerBeetle cluster id (default 0)
  COUNTERSIGN_LEDGER_HOLD_TIMEOUT on | off: reservations lapse by themselves in the ledger
                                  (default on embedded, off on TigerBeetle; README "Holds and their timeout")
  COUNTERSIGN_GRPC_PORT           gRPC port (default 50051)
  COUNTERSIGN_CONNECT_PORT        Connect/gRPC-Web port (default 8080)
  COUNTERSIGN_WEB_PORT            payer web terminal, HTTP/1.1 (default 8082; 0 picks a free one)
  COUNTERSIGN_ADMIN_KEY           operator API key (default: generated into <data dir>/admin.key)
  COUNTERSIGN_MASTER_KEY          base64 master key (default: <data dir>/master.key, mode 0600)
  COUNTERSIGN_TELCO_BRIDGE        a separate telco bridge's gRPC host:port (with COUNTERSIGN_TELCO_KEY)
  COUNTERSIGN_AUTHORIZERS         authorizer plugins after the built-in policy: name=host:port,... (README "Authorizer plugins")
  COUNTERSIGN_AUTHORIZER_DEADLINE_MS, COUNTERSIGN_AUTHORIZER_FAILURE (decline | require-strongest),
  COUNTERSIGN_AUTHORIZER_STRONGEST   plugin deadline (200), failure mode, factors required on failure (SECOND_CODE)
  COUNTERSIGN_SMPP, COUNTERSIGN_VOICE, COUNTERSIGN_TELCO_PORT, COUNTERSIGN_WEBHOOK_PORT,
  COUNTERSIGN_PUBLIC_WEBHOOK_URL, COUNTERSIGN_AUTHZ_ADDRESS   the bridge's settings (README "Telco")`;

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'with-bridge': { type: 'boolean', default: false }, workers: { type: 'string' } } });
  const workers = parseWorkers(values.workers);
  const config = loadConfig();
  if (workers > 1 || isWorker()) {
    const refusal = workersRefusal(config, values['with-bridge']);
    if (refusal !== undefined) throw new ConfigError(refusal);
    if (!isWorker()) return servePrimary(config, workers);
  }
  const withBridge = values['with-bridge'] ? await bridgeSettings(config) : undefined;
  const app = await createApp({ config: withBridge?.config ?? config });
  const servers = await startServers(app, { host: config.host, grpcPort: config.grpcPort, connectPort: config.connectPort, webPort: config.webPort, webPortRequired: config.webPortRequired || isWorker() });
  const bridge = withBridge === undefined ? undefined : await startBridge(withBridge.settings, `${config.host}:${servers.grpcPort}`, app.logger);
  app.logger.info({ grpcPort: servers.grpcPort, connectPort: servers.connectPort, stores: app.describe, worker: isWorker() }, 'countersign serving');
  const stop = async () => {
    await bridge?.close();
    await servers.close();
    await app.close();
  };
  if (isWorker()) {
    joinPrimary(app.events, { grpcPort: servers.grpcPort, connectPort: servers.connectPort, webUrl: servers.webUrl }, stop);
  } else {
    console.log(banner(withBridge?.config ?? config, { grpcPort: servers.grpcPort, connectPort: servers.connectPort, webUrl: servers.webUrl }, app.describe, bridge));
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop();
}

/** The bridge in this process: authz reaches it over loopback gRPC like a separate one. */
async function bridgeSettings(config: Config): Promise<{ config: Config; settings: TelcoSettings }> {
  const env = { ...process.env, COUNTERSIGN_TELCO_KEY: process.env.COUNTERSIGN_TELCO_KEY || `cs_telco_${randomBytes(24).toString('base64url')}` };
  let settings = telcoSettings(env, config.host);
  if (settings.grpcPort === 0) settings = { ...settings, grpcPort: await freePort(config.host) };
  return { settings, config: { ...config, telcoBridge: `${config.host}:${settings.grpcPort}`, telcoKey: settings.key } };
}

function banner(config: Config, servers: { grpcPort: number; connectPort: number; webUrl: string | undefined }, describe: string[], bridge: { grpcPort: number; webhookBaseUrl: string } | undefined, workers = 1): string {
  return `countersign serving${workers > 1 ? ` (${workers} worker processes)` : ''}
  gRPC (grpc-js)           ${config.host}:${servers.grpcPort}   health + reflection: grpcurl -plaintext ${config.host}:${servers.grpcPort} list
  Connect / gRPC-Web       http://${config.host}:${servers.connectPort}
  payer web terminal       ${servers.webUrl ?? `off: port ${config.webPort} is in use (set COUNTERSIGN_WEB_PORT)`}
  telco                    ${bridge !== undefined ? `bridge in process: gRPC ${config.host}:${bridge.grpcPort}, voice webhooks ${bridge.webhookBaseUrl}` : config.telcoBridge !== undefined ? `telco-bridge at ${config.telcoBridge}` : 'console (codes and calls printed here)'}
  ledger and stores        ${describe.join('; ')}
  operator key             ${config.adminKey === undefined ? join(config.dataDir, 'admin.key') : 'COUNTERSIGN_ADMIN_KEY'}
Ctrl-C stops.`;
}

/** `serve --workers N`: the primary forks the workers (services/workers.ts) and stays until a signal. */
async function servePrimary(config: Config, workers: number): Promise<void> {
  prepareKeys(config);
  const log = (line: string) => console.error(`countersign primary ${process.pid}: ${line}`);
  const primary = await startPrimary(config, workers, log);
  const { listening } = primary;
  console.log(banner(config, listening, [`TigerBeetle at ${config.tbAddresses.join(',')}`, config.redisUrl !== undefined ? 'Redis' : 'Redis Cluster'], undefined, workers));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await primary.stop();
}

/** `countersign telco-bridge`: the bridge as its own process. */
async function telcoBridgeCommand(): Promise<void> {
  const config = loadConfig();
  const authz = process.env.COUNTERSIGN_AUTHZ_ADDRESS;
  if (authz === undefined || authz === '') throw new ConfigError('telco-bridge needs COUNTERSIGN_AUTHZ_ADDRESS (authz gRPC host:port)');
  const logger = pino({ level: config.logLevel, base: { service: 'countersign-telco-bridge' } });
  const bridge = await startBridge(telcoSettings(process.env, config.host), authz, logger);
  console.log(`countersign telco-bridge
  gRPC (TelcoBridgeService)  ${config.host}:${bridge.grpcPort}
  voice webhooks             ${bridge.webhookBaseUrl}
  relays proofs to authz     ${authz}
Ctrl-C stops.`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await bridge.close();
}

function derive(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: { secret: { type: 'string' }, 'first-code': { type: 'string' }, amount: { type: 'string' }, currency: { type: 'string' }, payee: { type: 'string' } },
  });
  const missing = ['secret', 'first-code', 'amount', 'currency', 'payee'].filter((k) => values[k as keyof typeof values] === undefined);
  if (missing.length > 0) throw new ConfigError(`payer derive needs --${missing.join(', --')}`);
  if (!/^\d+$/.test(values.amount!)) throw new ConfigError('--amount is in minor units, digits only (2500 for 25.00)');
  const code = deriveSecondCode(base32Decode(values.secret!), {
    firstCode: values['first-code']!,
    amount: BigInt(values.amount!),
    currency: values.currency!,
    payeeAccountId: values.payee!,
  });
  console.log(`${code}    (${secondCodeSuite})`);
}

async function reconcileCommand(): Promise<void> {
  const app = await createApp({ config: loadConfig() });
  try {
    const report = await reconcile(app.payments.deps);
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await app.close();
  }
}

async function ledgerDemo(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { memory: { type: 'boolean', default: false } } });
  const { ledger, describe } = await openLedger(loadConfig(), { memory: values.memory });
  console.log(`countersign ledger demo on ${describe}`);
  try {
    await runLedgerDemo(ledger, (line) => console.log(line));
  } finally {
    await ledger.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve(rest);
      return 0;
    case 'telco-bridge':
      await telcoBridgeCommand();
      return 0;
    case 'demo':
      await runDemo(loadConfig(), (line) => console.log(line));
      return 0;
    case 'payer':
      if (rest[0] !== 'derive') throw new ConfigError('usage: countersign payer derive --secret … (see countersign help)');
      derive(rest.slice(1));
      return 0;
    case 'reconcile':
      await reconcileCommand();
      return 0;
    case 'ledger-demo':
      await ledgerDemo(rest);
      return 0;
    case 'authorizer-velocity':
      await authorizerVelocityCommand(rest);
      return 0;
    case 'bank-frontend':
      await runBankFrontEnd(rest);
      return 0;
    case undefined:
    case 'help':
    case '--help':
      console.log(usage);
      return command === undefined ? 2 : 0;
    default:
      console.error(`countersign: unknown command "${command}"\n\n${usage}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    const message = error instanceof ConfigError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
    console.error(`countersign: ${message}`);
    // Exit rather than wait for the event loop: a start that failed half way may leave clients
    // open (the TigerBeetle client reconnects forever), and a supervisor must see the failure.
    process.exit(1);
  },
);

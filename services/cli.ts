#!/usr/bin/env node
/**
 * The `countersign` command line: serve, demo, the client commands that call a running server
 * (services/commands/), reconcile. Conventions (every command): `--help` prints its usage and
 * touches nothing; a bad command line is one line and exit 2; a mistake the user can fix
 * (configuration, a busy port, a locked data directory) is one line and exit 1; anything else
 * is a bug and keeps its stack (services/cli-errors.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { reconcile } from '../authz/reconcile.js';
import { createApp, prepareKeys } from './app.js';
import { commandHelpText, isGrpcBindFailureLog, knownFailure, parseFlags, portInUse, UsageError, wantsHelp, type CommandHelp, untilStopSignal } from './cli-errors.js';
import { ConfigError, dataDirOf, environment, loadConfig, type Config } from './config.js';
import { isWorker, joinPrimary, parseWorkers, startPrimary, workersMax, workersRefusal } from './workers.js';
import { runDemo } from './demo.js';
import { openLedger } from './ledger.js';
import { runLedgerDemo } from './ledger-demo.js';
import { bankFrontEndHelp, runBankFrontEnd } from './bank/main.js';
import { startServers } from './server.js';
import { authorizerVelocityCommand, authorizerVelocityHelp } from './authorizers/velocity.js';
import { freePort, startBridge, telcoSettings, type TelcoSettings } from './telco.js';
import { clientCommandEntries, commandGroups, groupHelp, subcommandsOf } from './commands/index.js';

/** The configuration the command loaded (services/config.ts), kept for the error printer: a lock error names its data directory. */
let loaded: Config | undefined;

function configured(): Config {
  loaded = loadConfig();
  return loaded;
}

const serveHelp: CommandHelp = {
  name: 'serve',
  synopsis: '[--with-bridge] [--workers N]',
  summary: [
    'run the authorization service: gRPC (grpc-js, health, reflection),',
    'Connect/gRPC-Web (connect-node) and the payer web terminal on the configured ports',
  ],
  flags: [
    ['--with-bridge', 'also run the telco bridge (SMS over SMPP, calls over TwiML) in this process'],
    ['--workers N', `run N processes behind the same ports (1..${workersMax}; needs Redis and TigerBeetle:`],
    ['', 'the embedded data directory belongs to one process)'],
  ],
};

const commands: Readonly<Record<string, { help: CommandHelp; run: (args: string[]) => Promise<void> }>> = {
  serve: { help: serveHelp, run: serve },
  'telco-bridge': {
    help: { name: 'telco-bridge', synopsis: '', summary: ['run the telco bridge as its own process (COUNTERSIGN_AUTHZ_ADDRESS, COUNTERSIGN_TELCO_KEY)'], flags: [] },
    run: telcoBridgeCommand,
  },
  demo: {
    help: {
      name: 'demo',
      synopsis: '',
      summary: [
        'run authz, the telco bridge (simulated SMSC and voice provider) and a reference bank in process,',
        'print where the ledger and stores live, and walk a merchant and six payers through payments:',
        'M1 codes, M2 SMS + call, M3 passwords, M4 paired watch, M3c line credit, M5 card + PIN',
      ],
      flags: [],
    },
    run: async (args) => {
      parseFlags('demo', args, {});
      await runDemo(configured(), (line) => console.log(line));
    },
  },
  ...clientCommandEntries(),
  reconcile: {
    help: { name: 'reconcile', synopsis: '', summary: ['rebuild payment states from the ledger (the source of truth) and report'], flags: [] },
    run: reconcileCommand,
  },
  'ledger-demo': {
    help: { name: 'ledger-demo', synopsis: '[--memory]', summary: ['reserve / post / void / expire straight on the ledger'], flags: [['--memory', 'an in-memory embedded ledger instead of the configured one']] },
    run: ledgerDemo,
  },
  'authorizer-velocity': { help: authorizerVelocityHelp, run: authorizerVelocityCommand },
  'bank-frontend': { help: bankFrontEndHelp, run: runBankFrontEnd },
};

const helpColumn = 24;

function usageText(): string {
  const lines = ['usage: countersign <command> [options]      (countersign <command> --help for one command)', '', 'commands:'];
  for (const { help } of Object.values(commands)) {
    const head = `${help.name}${help.synopsis === '' ? '' : ` ${help.synopsis}`}`;
    const [first, ...more] = help.summary;
    if (head.length + 2 < helpColumn - 1) lines.push(`  ${head.padEnd(helpColumn - 2)}${first}`);
    else lines.push(`  ${head}`, `${' '.repeat(helpColumn)}${first}`);
    for (const line of more) lines.push(`${' '.repeat(helpColumn)}${line}`);
  }
  lines.push(`  ${'help'.padEnd(helpColumn - 2)}this text`, `  ${'--version'.padEnd(helpColumn - 2)}the version`);
  const nameWidth = Math.max(...environment.map(([name]) => name.length)) + 2;
  lines.push('', 'environment (all optional; see README "Configuration"):');
  for (const [name, what] of environment) lines.push(`  ${name.padEnd(nameWidth)}${what}`);
  return lines.join('\n');
}

async function serve(args: string[]): Promise<void> {
  const values = parseFlags('serve', args, { 'with-bridge': { type: 'boolean', default: false }, workers: { type: 'string' } });
  const workers = workersFlag(values.workers);
  const config = configured();
  if (workers > 1 || isWorker()) {
    const refusal = workersRefusal(config, values['with-bridge']);
    if (refusal !== undefined) throw new ConfigError(refusal);
    if (!isWorker()) return servePrimary(config, workers);
  }
  const withBridge = values['with-bridge'] ? await bridgeSettings(config) : undefined;
  const app = await createApp({ config: withBridge?.config ?? config });
  const ports = [
    { label: 'gRPC', setting: 'COUNTERSIGN_GRPC_PORT', port: config.grpcPort, grpcJs: true },
    { label: 'payer web terminal', setting: 'COUNTERSIGN_WEB_PORT', port: config.webPort, grpcJs: false },
    { label: 'Connect/gRPC-Web', setting: 'COUNTERSIGN_CONNECT_PORT', port: config.connectPort, grpcJs: false },
    ...(withBridge === undefined ? [] : bridgePorts(withBridge.settings)),
  ];
  const servers = await startServers(app, {
    host: config.host,
    grpcPort: config.grpcPort,
    connectPort: config.connectPort,
    webPort: config.webPort,
    webPortRequired: config.webPortRequired || isWorker(),
    tls: config.tls ?? null,
  }).catch((error: unknown) => Promise.reject(portError(error, config.host, ports)));
  const bridge = withBridge === undefined ? undefined : await startBridge(withBridge.settings, `${config.host}:${servers.grpcPort}`, app.logger).catch((error: unknown) => Promise.reject(portError(error, config.host, ports)));
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
  await untilStopSignal();
  await stop();
}

/** `--workers N`: a bad N is a usage error (exit 2), not a configuration one. */
function workersFlag(text: string | undefined): number {
  try {
    return parseWorkers(text);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError('serve', error.message);
    throw error;
  }
}

interface PortSetting {
  label: string;
  /** The variable or flag that moves it. */
  setting: string;
  port: number;
  /** Bound by grpc-js (its own error) rather than node:net. */
  grpcJs: boolean;
}

function bridgePorts(settings: TelcoSettings): PortSetting[] {
  return [
    { label: 'telco bridge gRPC', setting: 'COUNTERSIGN_TELCO_PORT', port: settings.grpcPort, grpcJs: true },
    { label: 'telco bridge webhook', setting: 'COUNTERSIGN_WEBHOOK_PORT', port: settings.webhookPort, grpcJs: false },
  ];
}

/** A busy port as a one-line ConfigError naming the setting that moves it; any other error as it is. */
function portError(error: unknown, host: string, ports: readonly PortSetting[]): unknown {
  const busy = portInUse(error);
  if (busy === undefined) return error;
  const which = ports.find((p) => p.port === busy.port && p.grpcJs === busy.grpcJs) ?? ports.find((p) => p.port === busy.port);
  const where = `${host}:${busy.port}`;
  if (which === undefined) return new ConfigError(`port ${where} is in use by another process`, { cause: error });
  return new ConfigError(`${which.label} port ${where} is in use by another process: set ${which.setting} to a free port (0 picks one)`, { cause: error });
}

/** The bridge in this process: authz reaches it over loopback gRPC like a separate one, with COUNTERSIGN_TELCO_KEY or a key made for this run. */
async function bridgeSettings(config: Config): Promise<{ config: Config; settings: TelcoSettings }> {
  const telcoKey = config.telcoKey ?? `cs_telco_${randomBytes(24).toString('base64url')}`;
  let settings = telcoSettings({ ...config, telcoKey });
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
  await untilStopSignal();
  await primary.stop();
}

/** `countersign telco-bridge`: the bridge as its own process. */
async function telcoBridgeCommand(args: string[]): Promise<void> {
  parseFlags('telco-bridge', args, {});
  const config = configured();
  const authz = config.authzAddress;
  if (authz === undefined) throw new ConfigError('telco-bridge needs COUNTERSIGN_AUTHZ_ADDRESS (authz gRPC host:port)');
  const settings = telcoSettings(config);
  const logger = pino({ level: config.logLevel, base: { service: 'countersign-telco-bridge' } });
  const bridge = await startBridge(settings, authz, logger).catch((error: unknown) => Promise.reject(portError(error, config.host, bridgePorts(settings))));
  console.log(`countersign telco-bridge
  gRPC (TelcoBridgeService)  ${config.host}:${bridge.grpcPort}
  voice webhooks             ${bridge.webhookBaseUrl}
  relays proofs to authz     ${authz}
Ctrl-C stops.`);
  await untilStopSignal();
  await bridge.close();
}

async function reconcileCommand(args: string[]): Promise<void> {
  parseFlags('reconcile', args, {});
  const app = await createApp({ config: configured() });
  try {
    const report = await reconcile(app.payments.deps);
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await app.close();
  }
}

async function ledgerDemo(args: string[]): Promise<void> {
  const values = parseFlags('ledger-demo', args, { memory: { type: 'boolean', default: false } });
  const { ledger, describe } = await openLedger(configured(), { memory: values.memory });
  console.log(`countersign ledger demo on ${describe}`);
  try {
    await runLedgerDemo(ledger, (line) => console.log(line));
  } finally {
    await ledger.close();
  }
}

/** Commands of two words (`payer derive`, `payment create`), by their first word. */
const groups: Readonly<Record<string, { help: CommandHelp; run: (args: string[]) => Promise<void> }>> = Object.fromEntries(
  commandGroups(Object.keys(commands)).map((group) => [
    group,
    {
      help: groupHelp(group, Object.values(commands).map((c) => c.help)),
      run: async () => Promise.reject(new UsageError(group, `needs a subcommand: ${subcommandsOf(group, Object.keys(commands)).join(', ')}`)),
    },
  ]),
);

/** The command and its arguments: `payer derive` is one command of two words. */
function commandOf(argv: readonly string[]): { name: string; args: string[] } {
  const [first = '', ...rest] = argv;
  if (!Object.hasOwn(groups, first)) return { name: first, args: rest };
  const name = `${first} ${rest[0] ?? ''}`;
  if (Object.hasOwn(commands, name)) return { name, args: rest.slice(1) };
  if (wantsHelp(rest)) return { name: first, args: ['--help'] };
  const subcommands = subcommandsOf(first, Object.keys(commands)).join(', ');
  throw new UsageError(first, rest[0] === undefined ? `needs a subcommand: ${subcommands}` : `unknown subcommand "${rest[0]}" (one of ${subcommands})`);
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    console.error(usageText());
    return 2;
  }
  if (['help', '--help', '-h'].includes(argv[0]!)) {
    console.log(usageText());
    return 0;
  }
  if (['version', '--version', '-v'].includes(argv[0]!)) {
    console.log(`countersign ${packageVersion()}`);
    return 0;
  }
  const { name, args } = commandOf(argv);
  const command = Object.hasOwn(commands, name) ? commands[name] : Object.hasOwn(groups, name) ? groups[name] : undefined;
  if (command === undefined) {
    console.error(`countersign: unknown command "${name}"; see countersign help`);
    return 2;
  }
  if (wantsHelp(args)) {
    console.log(commandHelpText(command.help));
    return 0;
  }
  const standalone = name === 'authorizer-velocity' || name === 'bank-frontend';
  await command.run(args).catch((error: unknown) => Promise.reject(standalone ? oneLinePortError(error) : error));
  return 0;
}

/** authorizer-velocity and bank-frontend: a busy --port. */
function oneLinePortError(error: unknown): unknown {
  const busy = portInUse(error);
  if (busy === undefined) return error;
  return new ConfigError(`port ${busy.port} is in use by another process: choose another with --port (0 picks a free one)`, { cause: error });
}

/** package.json's version, read when asked (the CLI runs from a checkout). */
function packageVersion(): string {
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

// grpc-js logs a failed bind itself before rejecting; the CLI says it once, in one line.
grpc.setLogger({
  error: (message?: unknown, ...rest: unknown[]) => void (isGrpcBindFailureLog(message) || console.error(`E ${String(message)}`, ...rest)),
  info: (message?: unknown, ...rest: unknown[]) => console.error(`I ${String(message)}`, ...rest),
  debug: (message?: unknown, ...rest: unknown[]) => console.error(`D ${String(message)}`, ...rest),
});

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    const known = knownFailure(error, loaded?.dataDir ?? dataDirOf());
    // A bug keeps its stack; a mistake the user can fix is one line.
    console.error(known?.line ?? `countersign: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    // Exit rather than wait for the event loop: a start that failed half way may leave clients
    // open (the TigerBeetle client reconnects forever), and a supervisor must see the failure.
    process.exit(known?.exitCode ?? 1);
  },
);

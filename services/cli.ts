#!/usr/bin/env node
/**
 * The `countersign` command line: serve, demo, the client commands that call a running server
 * (services/commands/), reconcile. Conventions (every command): `--help` prints its usage and
 * touches nothing; a bad command line is one line and exit 2; a mistake the user can fix
 * (configuration, a busy port, a locked data directory) is one line and exit 1; anything else
 * is a bug and keeps its stack (services/cli-errors.ts).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { commandHelpText, isGrpcBindFailureLog, knownFailure, portInUse, UsageError, wantsHelp, type CommandHelp } from './cli-errors.js';
import { ConfigError, dataDirOf, environment, loadConfig, type Config } from './config.js';
import { workersMax } from './workers.js';
import { bankFrontEndHelp, runBankFrontEnd } from './bank/main.js';
import { authorizerVelocityCommand, authorizerVelocityHelp } from './authorizers/velocity.js';
import { clientCommandEntries, commandGroups, groupHelp, subcommandsOf } from './commands/index.js';

/** The configuration the command loaded (services/config.ts), kept for the error printer: a lock error names its data directory. */
let loaded: Config | undefined;

function configured(): Config {
  loaded = loadConfig();
  return loaded;
}

/** The server-side commands' code, loaded when one of them runs (services/serve-commands.ts). */
const serverCommands = () => import('./serve-commands.js');

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
  serve: { help: serveHelp, run: async (args) => (await serverCommands()).serve(args, configured) },
  'telco-bridge': {
    help: { name: 'telco-bridge', synopsis: '', summary: ['run the telco bridge as its own process (COUNTERSIGN_AUTHZ_ADDRESS, COUNTERSIGN_TELCO_KEY)'], flags: [] },
    run: async (args) => (await serverCommands()).telcoBridgeCommand(args, configured),
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
    run: async (args) => (await serverCommands()).demo(args, configured),
  },
  ...clientCommandEntries(),
  reconcile: {
    help: { name: 'reconcile', synopsis: '', summary: ['rebuild payment states from the ledger (the source of truth) and report'], flags: [] },
    run: async (args) => (await serverCommands()).reconcileCommand(args, configured),
  },
  'ledger-demo': {
    help: { name: 'ledger-demo', synopsis: '[--memory]', summary: ['reserve / post / void / expire straight on the ledger'], flags: [['--memory', 'an in-memory embedded ledger instead of the configured one']] },
    run: async (args) => (await serverCommands()).ledgerDemo(args, configured),
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

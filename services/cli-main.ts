/**
 * The `countersign` command line, as a function of its arguments, output and environment
 * (services/cli.ts runs it as the process): serve, demo, the client commands that call a running server
 * (services/commands/), reconcile. Conventions (every command): `--help` prints its usage and
 * touches nothing; a bad command line is one line and exit 2; a mistake the user can fix
 * (configuration, a busy port, a locked data directory) is one line and exit 1; anything else
 * is a bug and keeps its stack (services/cli-errors.ts).
 */
import { readFileSync } from 'node:fs';
import { authorizerVelocityCommand, authorizerVelocityHelp } from './authorizers/velocity.js';
import { bankFrontEndHelp, runBankFrontEnd } from './bank/main.js';
import { type CommandHelp, commandHelpText, knownFailure, portInUse, UsageError, wantsHelp } from './cli-errors.js';
import { clientCommandEntries, commandGroups, groupHelp, subcommandsOf } from './commands/index.js';
import type { Io } from './commands/output.js';
import { type Config, ConfigError, dataDirOf, environment, loadConfig } from './config.js';
import { workersMax } from './workers.js';

/** What one run of the CLI writes to and reads its settings from. */
export interface CliContext {
  io: Io;
  env: NodeJS.ProcessEnv;
  /** The configuration the command loaded (services/config.ts), kept for the error printer: a lock error names its data directory. */
  loaded?: Config;
}

function configured(ctx: CliContext): () => Config {
  return () => (ctx.loaded = loadConfig(ctx.env));
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

type Command = { help: CommandHelp; run: (args: string[], ctx: CliContext) => Promise<void> };

const commands: Readonly<Record<string, Command>> = {
  serve: { help: serveHelp, run: async (args, ctx) => (await serverCommands()).serve(args, configured(ctx)) },
  'telco-bridge': {
    help: {
      name: 'telco-bridge',
      synopsis: '',
      summary: ['run the telco bridge as its own process (COUNTERSIGN_AUTHZ_ADDRESS, COUNTERSIGN_TELCO_KEY)'],
      flags: [],
    },
    run: async (args, ctx) => (await serverCommands()).telcoBridgeCommand(args, configured(ctx)),
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
    run: async (args, ctx) => (await serverCommands()).demo(args, configured(ctx)),
  },
  ...clientCommandEntries(),
  reconcile: {
    help: { name: 'reconcile', synopsis: '', summary: ['rebuild payment states from the ledger (the source of truth) and report'], flags: [] },
    run: async (args, ctx) => (await serverCommands()).reconcileCommand(args, configured(ctx)),
  },
  'ledger-demo': {
    help: {
      name: 'ledger-demo',
      synopsis: '[--memory]',
      summary: ['reserve / post / void / expire straight on the ledger'],
      flags: [['--memory', 'an in-memory embedded ledger instead of the configured one']],
    },
    run: async (args, ctx) => (await serverCommands()).ledgerDemo(args, configured(ctx)),
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
const groups: Readonly<Record<string, Command>> = Object.fromEntries(
  commandGroups(Object.keys(commands)).map((group) => [
    group,
    {
      help: groupHelp(
        group,
        Object.values(commands).map((c) => c.help),
      ),
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

async function main(argv: readonly string[], ctx: CliContext): Promise<number> {
  if (argv.length === 0) {
    ctx.io.err(usageText());
    return 2;
  }
  if (['help', '--help', '-h'].includes(argv[0]!)) {
    ctx.io.out(usageText());
    return 0;
  }
  if (['version', '--version', '-v'].includes(argv[0]!)) {
    ctx.io.out(`countersign ${packageVersion()}`);
    return 0;
  }
  const { name, args } = commandOf(argv);
  const command = Object.hasOwn(commands, name) ? commands[name] : Object.hasOwn(groups, name) ? groups[name] : undefined;
  if (command === undefined) {
    ctx.io.err(`countersign: unknown command "${name}"; see countersign help`);
    return 2;
  }
  if (wantsHelp(args)) {
    ctx.io.out(commandHelpText(command.help));
    return 0;
  }
  const standalone = name === 'authorizer-velocity' || name === 'bank-frontend';
  await command.run(args, ctx).catch((error: unknown) => Promise.reject(standalone ? oneLinePortError(error) : error));
  return 0;
}

/**
 * Runs one command line: its exit code, and whether it failed with a mistake the user can fix
 * (then its one line is written to `io.err`: the process exits at once). Anything else is a bug
 * and is thrown, to keep its stack.
 */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<{ code: number; failed: boolean }> {
  try {
    return { code: await main(argv, ctx), failed: false };
  } catch (error) {
    const known = knownFailure(error, ctx.loaded?.dataDir ?? dataDirOf(ctx.env));
    if (known === undefined) throw error;
    ctx.io.err(known.line);
    return { code: known.exitCode, failed: true };
  }
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

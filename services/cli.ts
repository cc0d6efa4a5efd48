#!/usr/bin/env node
/**
 * The `countersign` command line.
 *
 *   countersign demo [--memory]   walk through reserve → post/void on the configured ledger
 *   countersign help
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { openLedger } from './ledger.js';
import { runLedgerDemo } from './ledger-demo.js';

const usage = `usage: countersign <command> [options]

commands:
  demo [--memory]   fund a payer, reserve, post with fee, void, refuse, retry and expire
                    payments on the ledger, printing every step and the balances
  help              this text

environment (all optional; see README "Configuration"):
  COUNTERSIGN_DATA_DIR            embedded ledger journal directory (default ./.data)
  COUNTERSIGN_TB_ADDRESSES        TigerBeetle replica addresses, comma-separated
  COUNTERSIGN_TB_CLUSTER_ID       TigerBeetle cluster id (default 0)
  COUNTERSIGN_LEDGER_TIMEOUT_MS   deadline for one ledger request (default 5000)`;

async function demo(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { memory: { type: 'boolean', default: false } } });
  const { ledger, describe } = await openLedger(loadConfig(), { memory: values.memory });
  console.log(`countersign demo on ${describe}`);
  try {
    await runLedgerDemo(ledger, (line) => console.log(line));
  } finally {
    await ledger.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'demo':
      await demo(rest);
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
    process.exitCode = 1;
  },
);

#!/usr/bin/env node
/**
 * The `countersign` process: runs the command line (services/cli-main.ts) on the console and the
 * process environment. A mistake the user can fix is one line and its exit code; anything else is
 * a bug and keeps its stack (services/cli-errors.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { isGrpcBindFailureLog } from './cli-errors.js';
import { runCli } from './cli-main.js';
import { consoleIo } from './commands/output.js';

// grpc-js logs a failed bind itself before rejecting; the CLI says it once, in one line.
grpc.setLogger({
  error: (message?: unknown, ...rest: unknown[]) => void (isGrpcBindFailureLog(message) || console.error(`E ${String(message)}`, ...rest)),
  info: (message?: unknown, ...rest: unknown[]) => console.error(`I ${String(message)}`, ...rest),
  debug: (message?: unknown, ...rest: unknown[]) => console.error(`D ${String(message)}`, ...rest),
});

// Output piped into `head` and closed early: the reader has what it wanted, no stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});

runCli(process.argv.slice(2), { io: consoleIo, env: process.env }).then(
  // A failed start may leave clients open (the TigerBeetle client reconnects forever), and a
  // supervisor must see the failure: exit at once rather than wait for the event loop.
  ({ code, failed }) => (failed ? process.exit(code) : (process.exitCode = code)),
  (error: unknown) => {
    console.error(`countersign: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exit(1);
  },
);

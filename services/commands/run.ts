import { ConnectError } from '@connectrpc/connect';
import type { CommandHelp } from '../cli-errors.js';
import { type Clients, type Server, withClients } from './connection.js';
import { type Io, serverFailure } from './output.js';

/**
 * A client command: flags in, calls to a running server, lines out. It throws UsageError (exit 2)
 * and ConfigError (exit 1) as every command does, and CommandFailure for what the server refused
 * or what the command found (exit 1, one line).
 */
export interface ClientCommand {
  help: CommandHelp;
  run(args: string[], io: Io, env: NodeJS.ProcessEnv): Promise<void>;
}

/** The calls of one command on one key; a gRPC error becomes `<gRPC code>: <message>`. */
export async function onServer<T>(command: string, server: Server, key: string, use: (clients: Clients) => Promise<T>): Promise<T> {
  try {
    return await withClients(server, key, use);
  } catch (error) {
    if (error instanceof ConnectError) throw serverFailure(command, error, server.address);
    throw error;
  }
}

/**
 * The command as the CLI's table runs it, on the run's output and environment (the console and
 * the process's, in `countersign`). Its failures (CommandFailure, UsageError, ConfigError) are
 * printed in one line by the CLI's error printer (services/cli-errors.ts `knownFailure`), as
 * every command's are.
 */
export function cliEntry(command: ClientCommand): { help: CommandHelp; run: (args: string[], ctx: { io: Io; env: NodeJS.ProcessEnv }) => Promise<void> } {
  return { help: command.help, run: (args, ctx) => command.run(args, ctx.io, ctx.env) };
}

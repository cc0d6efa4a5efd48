import { type DescMessage, type MessageShape, toJson } from '@bufbuild/protobuf';
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import { Code, type ConnectError } from '@connectrpc/connect';
import { formatMoney } from '../../ledger/chart.js';
import { CommandFailure } from '../cli-errors.js';
import { ErrorInfoSchema } from '../rpc/status-details.js';

export { CommandFailure };

/**
 * What the client commands print: human lines by default, one JSON object with `--json`
 * (protobuf JSON of the response, 64-bit numbers as decimal strings), and one line for a
 * failure the server reported.
 */

/** Where a command writes: stdout lines, stderr lines. The CLI passes the console; tests collect. */
export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export const consoleIo: Io = { out: (line) => console.log(line), err: (line) => console.error(line) };

/** `PERMISSION_DENIED` for Code.PermissionDenied: the gRPC spelling of connect's code names. */
export function grpcCodeName(code: Code): string {
  return (Code[code] ?? `CODE_${code}`).replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();
}

/** A ConnectError as `<gRPC code>: <message>`, with the attempts left when the server says; `hint` for an unreachable server. */
export function serverFailure(command: string, error: ConnectError, server: string): CommandFailure {
  const info = error.findDetails(ErrorInfoSchema)[0] as { metadata?: Record<string, string> } | undefined;
  const left = info?.metadata?.attempts_left;
  const attempts = left === undefined ? '' : ` (${left} attempts left)`;
  const unreachable = error.code === Code.Unavailable && /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT/.test(error.rawMessage);
  const hint = unreachable
    ? ` (no countersign server at ${server}: start one with countersign serve, or give --server HOST:PORT or COUNTERSIGN_GRPC_PORT)`
    : '';
  return new CommandFailure(command, `${grpcCodeName(error.code)}: ${error.rawMessage}${attempts}${hint}`, { cause: error });
}

/** A response message as protobuf JSON with every field (zeros too), for `--json`. */
export function messageJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Record<string, unknown> {
  return toJson(schema, message, { alwaysEmitImplicit: true }) as Record<string, unknown>;
}

/** One JSON object on one line; bigints as decimal strings. */
export function printJson(io: Io, value: Record<string, unknown>): void {
  io.out(JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
}

/** `label` padded so values line up. */
export const labelWidth = 22;
export const row = (label: string, value: string) => `  ${label.padEnd(labelWidth)}${value}`;

/** "USD 42.00 (4200)": major units for people, minor units as the commands take them. */
export function money(amount: bigint, currency: string): string {
  return `${formatMoney(amount, currency)} (${amount})`;
}

export function isoTime(t: Timestamp | undefined): string {
  return t === undefined ? '-' : timestampDate(t).toISOString();
}

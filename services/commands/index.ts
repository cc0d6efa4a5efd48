import type { CommandHelp } from '../cli-errors.js';
import { merchantRevokeKey, merchantRotateKey, payerRevokeToken, payerRotateToken } from './credentials.js';
import { balance, fund } from './ledger.js';
import { merchantEnroll } from './merchant.js';
import { payerConfirm, payerDerive, payerEnroll } from './payer.js';
import { paymentCreate, paymentGet, paymentList } from './payment.js';
import { type ClientCommand, cliEntry } from './run.js';

/**
 * The client commands, which call a running server over gRPC, in the order `countersign help`
 * lists them: the path from an empty server to a confirmed payment and a balance.
 */
export const clientCommands: readonly ClientCommand[] = [
  merchantEnroll,
  payerEnroll,
  fund,
  paymentCreate,
  payerConfirm,
  paymentGet,
  paymentList,
  balance,
  payerDerive,
  // Keys have a lifecycle (README "Tenant safety").
  merchantRotateKey,
  merchantRevokeKey,
  payerRotateToken,
  payerRevokeToken,
];

/** The CLI's table entries of the client commands, by name. */
export function clientCommandEntries(): Record<string, ReturnType<typeof cliEntry>> {
  return Object.fromEntries(clientCommands.map((c) => [c.help.name, cliEntry(c)]));
}

/** The first words of the commands of two words (`payer`, `payment`), in table order. */
export function commandGroups(names: readonly string[]): string[] {
  return [...new Set(names.filter((n) => n.includes(' ')).map((n) => n.split(' ')[0]!))];
}

/** The subcommands of a group, in table order. */
export function subcommandsOf(group: string, names: readonly string[]): string[] {
  return names.filter((n) => n.startsWith(`${group} `)).map((n) => n.slice(group.length + 1));
}

/** `countersign <group> --help`: its subcommands, each with its usage line and first summary line. */
export function groupHelp(group: string, helps: readonly CommandHelp[]): CommandHelp {
  const members = helps.filter((h) => h.name.startsWith(`${group} `));
  return {
    name: group,
    synopsis: `<${members.map((h) => h.name.slice(group.length + 1)).join('|')}> [options]`,
    summary: [
      `subcommands (countersign ${group} <subcommand> --help for one):`,
      ...members.flatMap((h) => [`  countersign ${h.name} ${h.synopsis}`, `      ${h.summary[0] ?? ''}`]),
    ],
    flags: [],
  };
}

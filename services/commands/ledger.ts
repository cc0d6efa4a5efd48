import { type Account, AccountKind, FundAccountResponseSchema, GetAccountResponseSchema } from '../../gen/countersign/v1/ledger_pb.js';
import { parseFlags } from '../cli-errors.js';
import { amountOf, clientFlagHelp, clientFlags, currencyOfFlag, idempotencyKeyOf, idOf, parseWithOperand, required } from './args.js';
import { configOf, operatorKey, serverOf } from './connection.js';
import { messageJson, money, printJson, row } from './output.js';
import { type ClientCommand, onServer } from './run.js';

/** `countersign fund` and `countersign balance`: the ledger, with the operator key. */

/** An account's balances as text: the balance, what is available, and the raw ledger columns. */
export function accountLines(a: Account): string[] {
  const owner = a.ownerId === '' ? '' : `, owner ${a.ownerId}`;
  return [
    `account ${a.id}: ${AccountKind[a.kind]} (code ${a.code}), ${a.currency}${owner}`,
    row('balance', money(a.balance, a.currency)),
    row('available', `${money(a.available, a.currency)}   (the balance less pending reservations)`),
    row('debits', `posted ${a.debitsPosted}, pending ${a.debitsPending}`),
    row('credits', `posted ${a.creditsPosted}, pending ${a.creditsPending}`),
  ];
}

const fundFlags = {
  ...clientFlags,
  account: { type: 'string' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  reference: { type: 'string' },
  'idempotency-key': { type: 'string' },
} as const;

export const fund: ClientCommand = {
  help: {
    name: 'fund',
    synopsis: '--account ID --amount MINOR [--currency USD] [--reference R] [--idempotency-key K] [--json]',
    summary: [
      "deposit into an account from the operator's funding account (operator key)",
      'Prints the idempotency key: retrying with --idempotency-key K never funds twice.',
    ],
    flags: [
      ['--account ID', 'the account credited (32 hex digits: prepaid account from payer enroll)'],
      ['--amount MINOR', 'minor units, digits only (20000 for 200.00)'],
      ['--currency USD', "the account's currency (default: read from the account)"],
      ['--reference R', 'free text kept for audit'],
      ['--idempotency-key K', 'reuse the key of an earlier attempt (default: a new one, printed)'],
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'fund';
    const values = parseFlags(command, args, fundFlags);
    required(command, values, ['account', 'amount']);
    const accountId = idOf(command, '--account', values.account!);
    const amount = amountOf(command, '--amount', values.amount!);
    const given = values.currency === undefined ? undefined : currencyOfFlag(command, values.currency);
    const idempotencyKey = idempotencyKeyOf(command, values['idempotency-key'], 'fund');
    const config = configOf(env);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, operatorKey(config), async (c) => {
      const currency = given ?? (await c.ledger.getAccount({ accountId })).account!.currency;
      return c.ledger.fundAccount({ idempotencyKey, accountId, amount, currency, reference: values.reference ?? '' });
    });
    if (values.json) return printJson(io, { idempotencyKey, ...messageJson(FundAccountResponseSchema, response) });
    const account = response.account!;
    io.out(`funded ${account.id} with ${money(amount, account.currency)}`);
    io.out(row('balance', money(account.balance, account.currency)));
    io.out(row('available', money(account.available, account.currency)));
    io.out(row('transfer', response.transfer!.id));
    io.out(row('idempotency key', `${idempotencyKey}   (a retry with --idempotency-key ${idempotencyKey} never funds twice)`));
  },
};

export const balance: ClientCommand = {
  help: {
    name: 'balance',
    synopsis: 'ACCOUNT_ID [--json]',
    summary: ["an account's balance, available (net of reservations) and raw columns (operator key)"],
    flags: [...clientFlagHelp],
  },
  async run(args, io, env) {
    const command = 'balance';
    const { values, operand } = parseWithOperand(command, args, clientFlags, 'ACCOUNT_ID');
    const accountId = idOf(command, 'ACCOUNT_ID', operand);
    const config = configOf(env);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, operatorKey(config), (c) => c.ledger.getAccount({ accountId }));
    if (values.json) return printJson(io, messageJson(GetAccountResponseSchema, response));
    for (const line of accountLines(response.account!)) io.out(line);
  },
};

export const ledgerCommands = [fund, balance] as const;

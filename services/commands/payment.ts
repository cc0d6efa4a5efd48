import { Channel, DeclineReason, Factor, type Payment, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import {
  type CreatePaymentRequest,
  CreatePaymentResponseSchema,
  GetPaymentResponseSchema,
  ListPaymentsResponseSchema,
} from '../../gen/countersign/v1/payments_pb.js';
import { parseFlags, UsageError } from '../cli-errors.js';
import { amountOf, clientFlagHelp, clientFlags, currencyOfFlag, idempotencyKeyOf, idOf, parseWithOperand, positiveIntOf, required, stateOf } from './args.js';
import { configOf, merchantKey, serverOf } from './connection.js';
import { isoTime, messageJson, money, printJson, row } from './output.js';
import { type ClientCommand, onServer } from './run.js';

/** `countersign payment create | get | list`: the merchant side, with the merchant's API key. */

/** `payment list --limit`: one page, at most what the server serves in one. */
export const listLimitMax = 1000;
const listLimitDefault = 20;

const keyFlag = { key: { type: 'string' } } as const;
const keyHelp = ['--key KEY', "the merchant's API key (default COUNTERSIGN_API_KEY)"] as const;

/** Channels a payment request may name: where the request came from. */
const channelNames = ['app', 'web', 'merchant', 'instant-messaging', 'sms', 'voice', 'mobile-network'] as const;

function channelOf(command: string, text: string): Channel {
  if (!(channelNames as readonly string[]).includes(text))
    throw new UsageError(command, `--channel: unknown channel "${text}" (one of ${channelNames.join(', ')})`);
  return Channel[text.toUpperCase().replace('-', '_') as keyof typeof Channel];
}

const names = (factors: readonly Factor[]) => (factors.length === 0 ? 'none' : factors.map((f) => Factor[f]).join(', '));

/** A payment as text: the lines a person checks. */
export function paymentLines(p: Payment): string[] {
  const pending = p.requiredFactors.filter((f) => !p.satisfiedFactors.includes(f));
  const state = PaymentState[p.state];
  const why =
    p.state === PaymentState.CHALLENGED
      ? ` (waiting for ${names(pending)}; ${p.attemptsLeft} attempts left)`
      : p.state === PaymentState.DECLINED
        ? ` (${DeclineReason[p.declineReason]}${p.declineDetail === '' ? '' : `: ${p.declineDetail}`})`
        : '';
  return [
    `payment ${p.id}: ${state}${why}`,
    row('amount', money(p.amount, p.currency)),
    row('payer', p.payerId),
    row('payee account', p.payeeAccountId),
    ...(p.description === '' ? [] : [row('description', p.description)]),
    row('channel', Channel[p.channel]),
    row('factors', `required ${names(p.requiredFactors)}; satisfied ${names(p.satisfiedFactors)}`),
    row('created', isoTime(p.createdAt)),
    ...(p.state === PaymentState.CHALLENGED || p.state === PaymentState.CREATED ? [row('expires', isoTime(p.expiresAt))] : []),
  ];
}

const createFlags = {
  ...clientFlags,
  ...keyFlag,
  payer: { type: 'string' },
  'payer-phone': { type: 'string' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  description: { type: 'string' },
  channel: { type: 'string' },
  'idempotency-key': { type: 'string' },
} as const;

export const paymentCreate: ClientCommand = {
  help: {
    name: 'payment create',
    synopsis: '(--payer ID | --payer-phone +1...) --amount MINOR --currency USD [--description D] [--channel app] [--idempotency-key K] [--key KEY] [--json]',
    summary: [
      'create a payment as a merchant (merchant API key)',
      "The payer's money is reserved, then the payer's policy decides: SUCCEEDED at once,",
      'CHALLENGED for proof, or DECLINED. Prints the idempotency key: a retry with',
      '--idempotency-key K returns the same payment, never a second one.',
    ],
    flags: [
      ['--payer ID', "the payer's id (32 hex digits, from payer enroll)"],
      ['--payer-phone +1...', "or the payer's phone number (E.164)"],
      ['--amount MINOR', 'minor units, digits only (2500 for 25.00)'],
      ['--currency USD', 'ISO 4217 code'],
      ['--description D', 'shown to the payer with the codes'],
      ['--channel C', `where the request came from: ${channelNames.join(', ')}`],
      ['', "(default: the server's, merchant: the first code goes to the payer's phone, or to"],
      ['', 'the serve console with the embedded channel;'],
      ['', "app or web: the payer's terminal fetches it, as payer confirm does)"],
      ['--idempotency-key K', 'reuse the key of an earlier attempt (default: a new one, printed)'],
      keyHelp,
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'payment create';
    const values = parseFlags(command, args, createFlags);
    required(command, values, ['amount', 'currency']);
    if ((values.payer === undefined) === (values['payer-phone'] === undefined))
      throw new UsageError(command, 'needs exactly one of --payer ID and --payer-phone +1...');
    const payer: CreatePaymentRequest['payer'] =
      values.payer !== undefined ? { case: 'payerId', value: idOf(command, '--payer', values.payer) } : { case: 'payerPhone', value: values['payer-phone']! };
    const request = {
      idempotencyKey: idempotencyKeyOf(command, values['idempotency-key'], 'payment'),
      payer,
      amount: amountOf(command, '--amount', values.amount!),
      currency: currencyOfFlag(command, values.currency!),
      description: values.description ?? '',
      channel: values.channel === undefined ? Channel.UNSPECIFIED : channelOf(command, values.channel),
    };
    const config = configOf(env);
    const key = merchantKey(command, values.key, config);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, key, (c) => c.payments.createPayment(request));
    if (values.json) return printJson(io, { idempotencyKey: request.idempotencyKey, ...messageJson(CreatePaymentResponseSchema, response) });
    for (const line of paymentLines(response.payment!)) io.out(line);
    io.out(row('idempotency key', `${request.idempotencyKey}   (a retry with --idempotency-key ${request.idempotencyKey} returns this payment)`));
  },
};

export const paymentGet: ClientCommand = {
  help: {
    name: 'payment get',
    synopsis: 'PAYMENT_ID [--key KEY] [--json]',
    summary: ["read one of the merchant's payments (merchant API key)"],
    flags: [keyHelp, ...clientFlagHelp],
  },
  async run(args, io, env) {
    const command = 'payment get';
    const { values, operand } = parseWithOperand(command, args, { ...clientFlags, ...keyFlag }, 'PAYMENT_ID');
    const paymentId = idOf(command, 'PAYMENT_ID', operand);
    const config = configOf(env);
    const key = merchantKey(command, values.key, config);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, key, (c) => c.payments.getPayment({ paymentId }));
    if (values.json) return printJson(io, messageJson(GetPaymentResponseSchema, response));
    for (const line of paymentLines(response.payment!)) io.out(line);
  },
};

export const paymentList: ClientCommand = {
  help: {
    name: 'payment list',
    synopsis: `[--state S] [--limit N (${listLimitDefault})] [--key KEY] [--json]`,
    summary: ["list the merchant's payments, newest first (merchant API key)"],
    flags: [
      ['--state S', 'only payments in this state (CREATED, CHALLENGED, APPROVED, SUCCEEDED, DECLINED, EXPIRED, CANCELLED)'],
      ['--limit N', `at most N payments, 1..${listLimitMax} (default ${listLimitDefault})`],
      keyHelp,
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'payment list';
    const values = parseFlags(command, args, { ...clientFlags, ...keyFlag, state: { type: 'string' }, limit: { type: 'string' } });
    const states = values.state === undefined ? [] : [stateOf(command, values.state)];
    const pageSize = values.limit === undefined ? listLimitDefault : positiveIntOf(command, '--limit', values.limit, listLimitMax);
    const config = configOf(env);
    const key = merchantKey(command, values.key, config);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, key, (c) => c.payments.listPayments({ pageSize, states }));
    if (values.json) return printJson(io, messageJson(ListPaymentsResponseSchema, response));
    for (const p of response.payments) {
      io.out(
        `${p.id}  ${PaymentState[p.state].padEnd(10)}  ${money(p.amount, p.currency).padEnd(22)}  payer ${p.payerId}  ${isoTime(p.createdAt)}${p.description === '' ? '' : `  ${p.description}`}`,
      );
    }
    const more = response.nextPageToken === '' ? '' : ` (more exist: raise --limit, up to ${listLimitMax})`;
    io.out(`${response.payments.length} payment${response.payments.length === 1 ? '' : 's'}${more}`);
  },
};

export const paymentCommands = [paymentCreate, paymentGet, paymentList] as const;

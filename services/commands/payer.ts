import { ChallengeFieldError, deriveSecondCode, secondCodeSuite } from '../../authz/codes/challenge.js';
import { secretBytesMin } from '../../authz/codes/secret.js';
import { Channel, Factor } from '../../gen/countersign/v1/common_pb.js';
import { EnrollPayerResponseSchema, type PayerPolicy } from '../../gen/countersign/v1/enrollment_pb.js';
import { ConfirmPaymentResponseSchema } from '../../gen/countersign/v1/payer_pb.js';
import { parseFlags, UsageError } from '../cli-errors.js';
import { parseSecretInput, SecretInputError } from '../web/client/secret-input.mjs';
import { amountOf, clientFlagHelp, clientFlags, currencyOfFlag, factorOf, idempotencyKeyOf, idOf, limitOf, required } from './args.js';
import { configOf, operatorKey, payerToken, payerTokenVariable, type Server, serverOf } from './connection.js';
import { CommandFailure, messageJson, money, printJson, row } from './output.js';
import { paymentLines } from './payment.js';
import { type ClientCommand, onServer } from './run.js';

/**
 * `countersign payer enroll` (operator key), and the payer's terminal on the command line:
 * `payer derive` computes a second code, `payer confirm` reads the payment's challenge with the
 * payer's token, derives the code and confirms.
 */

/** The verification secret from base32 or the otpauth:// URI, as the web terminal reads it; at least secretBytesMin bytes. */
export function secretOf(command: string, text: string): Buffer {
  let parsed: ReturnType<typeof parseSecretInput>;
  try {
    parsed = parseSecretInput(text);
  } catch (error) {
    if (error instanceof SecretInputError) throw new UsageError(command, `--secret: ${error.message}`);
    throw error;
  }
  if (parsed.suite !== secondCodeSuite)
    throw new UsageError(command, `--secret: the link's suite ${parsed.suite} is not countersign's second-code suite ${secondCodeSuite}`);
  const secret = Buffer.from(parsed.secret);
  if (secret.length < secretBytesMin) throw new UsageError(command, `--secret: the verification secret must be at least ${secretBytesMin * 8} bits`);
  return secret;
}

/** What a second code is bound to. */
interface Binding {
  amount: bigint;
  currency: string;
  payeeAccountId: string;
}

function firstCodeOf(command: string, text: string): string {
  if (!/^\d{8}$/.test(text)) throw new UsageError(command, `--first-code is the 8 digits the payment showed, got "${text}"`);
  return text;
}

function derive(command: string, secret: Buffer, firstCode: string, binding: Binding): string {
  try {
    return deriveSecondCode(secret, { firstCode, ...binding });
  } catch (error) {
    if (error instanceof ChallengeFieldError) throw new UsageError(command, error.message);
    throw error;
  }
}

/** The payment's challenge as the payer's token reads it: what the code is bound to, and the first code when the terminal is its channel. */
async function challengeOf(command: string, server: Server, token: string, paymentId: string) {
  const challenge = await onServer(command, server, token, (c) => c.payer.getChallenge({ paymentId }));
  if (!challenge.pendingFactors.includes(Factor.SECOND_CODE)) {
    const pending = challenge.pendingFactors.length === 0 ? 'nothing' : challenge.pendingFactors.map((f) => Factor[f]).join(', ');
    throw new CommandFailure(command, `payment ${paymentId} does not wait for a second code (pending: ${pending})`);
  }
  return challenge;
}

/** The first code: the flag, else the one the challenge gives the payer's terminal. */
function firstCodeFrom(
  command: string,
  flag: string | undefined,
  challenge: { firstCode: string; firstCodeDelivery?: { channel: Channel; destinationMasked: string } | undefined },
): string {
  if (flag !== undefined) return firstCodeOf(command, flag);
  if (challenge.firstCode !== '') return challenge.firstCode;
  const delivery = challenge.firstCodeDelivery;
  const where =
    delivery === undefined
      ? ''
      : `: it went by ${Channel[delivery.channel]}${delivery.destinationMasked === '' ? '' : ` to ${delivery.destinationMasked}`} (with the embedded console channel, serve prints it)`;
  throw new UsageError(command, `needs --first-code 8DIGITS${where}`);
}

const deriveFlags = {
  ...clientFlags,
  secret: { type: 'string' },
  'first-code': { type: 'string' },
  amount: { type: 'string' },
  currency: { type: 'string' },
  payee: { type: 'string' },
  payment: { type: 'string' },
  token: { type: 'string' },
} as const;

export const payerDerive: ClientCommand = {
  help: {
    name: 'payer derive',
    synopsis: '--secret BASE32 --first-code 8DIGITS --amount MINOR --currency USD --payee HEX32',
    summary: [
      "compute a second code as a payer's terminal does",
      'Instead of --amount, --currency and --payee, --payment ID --token T reads them from the',
      "payment's challenge on a running server (and the first code, for app or web payments).",
    ],
    flags: [
      ['--secret BASE32', `the payer's verification secret: base32 or the otpauth:// URI, at least ${secretBytesMin * 8} bits`],
      ['--first-code 8DIGITS', 'the first code the payment showed'],
      ['--amount MINOR', 'the amount in minor units, digits only (2500 for 25.00)'],
      ['--currency USD', 'the currency code'],
      ['--payee HEX32', "the payee's account id (payee account, not the merchant id)"],
      ['--payment ID', 'or: the payment, read with --token'],
      ['--token T', `the payer's token, with --payment (default ${payerTokenVariable})`],
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'payer derive';
    const values = parseFlags(command, args, deriveFlags);
    const online = values.payment !== undefined;
    const offline = (['amount', 'currency', 'payee'] as const).filter((k) => values[k] !== undefined);
    if (online && offline.length > 0) throw new UsageError(command, `--payment reads the amount, currency and payee: drop --${offline.join(', --')}`);
    if (!online && values.token !== undefined) throw new UsageError(command, '--token goes with --payment');
    required(command, values, online ? ['secret'] : ['secret', 'first-code', 'amount', 'currency', 'payee']);
    const secret = secretOf(command, values.secret!);
    let firstCode: string;
    let binding: Binding;
    if (online) {
      const paymentId = idOf(command, '--payment', values.payment!);
      if (values['first-code'] !== undefined) firstCodeOf(command, values['first-code']);
      const config = configOf(env);
      const token = payerToken(command, values.token, config);
      const challenge = await challengeOf(command, serverOf(command, values.server, config), token, paymentId);
      firstCode = firstCodeFrom(command, values['first-code'], challenge);
      binding = { amount: challenge.amount, currency: challenge.currency, payeeAccountId: challenge.payeeAccountId };
    } else {
      firstCode = firstCodeOf(command, values['first-code']!);
      const payee = values.payee!;
      if (!/^[0-9a-fA-F]{32}$/.test(payee)) throw new UsageError(command, `--payee is the payee account id, 32 hex digits, got "${payee}"`);
      binding = { amount: amountOf(command, '--amount', values.amount!), currency: currencyOfFlag(command, values.currency!), payeeAccountId: payee };
    }
    const code = derive(command, secret, firstCode, binding);
    if (values.json)
      return printJson(io, {
        secondCode: code,
        suite: secondCodeSuite,
        amount: binding.amount,
        currency: binding.currency,
        payeeAccountId: binding.payeeAccountId,
      });
    io.out(`${code}    (${secondCodeSuite})`);
  },
};

const confirmFlags = {
  ...clientFlags,
  payment: { type: 'string' },
  token: { type: 'string' },
  secret: { type: 'string' },
  'first-code': { type: 'string' },
  'idempotency-key': { type: 'string' },
} as const;

export const payerConfirm: ClientCommand = {
  help: {
    name: 'payer confirm',
    synopsis: '--payment ID --secret BASE32|otpauth://... [--first-code 8DIGITS] [--token T] [--json]',
    summary: [
      "confirm a payment with the second code, as the payer's terminal does (payer token)",
      'Reads the challenge (amount, currency, payee; the first code when the payment came from',
      'the app or web channel), derives the code as payer derive does, confirms, prints the state.',
    ],
    flags: [
      ['--payment ID', 'the payment (from payment create)'],
      ['--secret S', `the payer's verification secret: base32 or the otpauth:// URI (from payer enroll)`],
      ['--first-code 8DIGITS', 'the first code, when it went by SMS or to the console instead of the terminal'],
      ['--token T', `the payer's token (default ${payerTokenVariable})`],
      ['--idempotency-key K', 'reuse the key of an earlier attempt (default: a new one)'],
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'payer confirm';
    const values = parseFlags(command, args, confirmFlags);
    required(command, values, ['payment', 'secret']);
    const paymentId = idOf(command, '--payment', values.payment!);
    const secret = secretOf(command, values.secret!);
    if (values['first-code'] !== undefined) firstCodeOf(command, values['first-code']);
    const idempotencyKey = idempotencyKeyOf(command, values['idempotency-key'], 'confirm');
    const config = configOf(env);
    const token = payerToken(command, values.token, config);
    const server = serverOf(command, values.server, config);
    const challenge = await challengeOf(command, server, token, paymentId);
    const firstCode = firstCodeFrom(command, values['first-code'], challenge);
    const secondCode = derive(command, secret, firstCode, { amount: challenge.amount, currency: challenge.currency, payeeAccountId: challenge.payeeAccountId });
    const response = await onServer(command, server, token, (c) =>
      c.payer.confirmPayment({ idempotencyKey, paymentId, proof: { case: 'secondCode', value: secondCode } }),
    );
    if (values.json) return printJson(io, { idempotencyKey, ...messageJson(ConfirmPaymentResponseSchema, response) });
    io.out(
      `confirmed ${money(challenge.amount, challenge.currency)} to ${challenge.payeeName === '' ? challenge.payeeAccountId : `${challenge.payeeName} (${challenge.payeeAccountId})`}`,
    );
    for (const line of paymentLines(response.payment!)) io.out(line);
  },
};

const enrollFlags = {
  ...clientFlags,
  phone: { type: 'string' },
  name: { type: 'string' },
  currency: { type: 'string' },
  'login-account': { type: 'string' },
  'no-factor-below': { type: 'string' },
  'one-factor-up-to': { type: 'string' },
  'one-factor': { type: 'string' },
  'more-factors': { type: 'string' },
  'idempotency-key': { type: 'string' },
} as const;

type EnrollValues = ReturnType<typeof parseFlags<typeof enrollFlags>>;

/** The policy flags as a PayerPolicy, or none (the server's default: every payment needs SECOND_CODE). */
function policyOf(command: string, values: EnrollValues, currency: string): Omit<PayerPolicy, '$typeName'>[] {
  const upTo = values['one-factor-up-to'];
  const others = (['no-factor-below', 'one-factor', 'more-factors'] as const).filter((k) => values[k] !== undefined);
  if (upTo === undefined) {
    if (others.length > 0) throw new UsageError(command, `--${others.join(', --')} go${others.length === 1 ? 'es' : ''} with --one-factor-up-to`);
    return [];
  }
  const oneFactor = factorOf(command, '--one-factor', values['one-factor'] ?? 'SECOND_CODE');
  const moreFactors =
    values['more-factors'] === undefined ? [oneFactor] : values['more-factors'].split(',').map((f) => factorOf(command, '--more-factors', f.trim()));
  return [
    {
      currency,
      noFactorBelow: values['no-factor-below'] === undefined ? 0n : limitOf(command, '--no-factor-below', values['no-factor-below']),
      oneFactorUpTo: limitOf(command, '--one-factor-up-to', upTo),
      oneFactor,
      moreFactors,
    },
  ];
}

function policyText(p: Omit<PayerPolicy, '$typeName'>): string {
  const below = p.noFactorBelow === 0n ? '' : `no factor below ${money(p.noFactorBelow, p.currency)}; `;
  return `${below}${Factor[p.oneFactor]} up to ${money(p.oneFactorUpTo, p.currency)}; above: ${p.moreFactors.map((f) => Factor[f]).join(' + ')}`;
}

export const payerEnroll: ClientCommand = {
  help: {
    name: 'payer enroll',
    synopsis: '--phone +1... --name N --currency USD [--one-factor-up-to MINOR [--no-factor-below MINOR] [--one-factor F] [--more-factors F,F]] [--json]',
    summary: [
      'enroll a payer and open their prepaid account (operator key)',
      "Prints the payer id, the prepaid account and the payer's secrets (token, verification",
      'secret), shown this once. Without policy flags every payment needs the second code.',
    ],
    flags: [
      ['--phone +1...', "the payer's phone number, E.164 (codes and calls go there)"],
      ['--name N', 'display name'],
      ['--currency USD', 'the currency of the prepaid account (ISO 4217)'],
      ['--login-account A', 'a login for checkouts (M3), optional'],
      ['--one-factor-up-to MINOR', 'policy: payments up to this amount need --one-factor; above, --more-factors'],
      ['--no-factor-below MINOR', 'policy: payments below this amount need no factor (default 0)'],
      ['--one-factor F', 'policy: the factor of the middle band (default SECOND_CODE)'],
      ['--more-factors F,F', 'policy: the factors above --one-factor-up-to (default: --one-factor)'],
      ['--idempotency-key K', 'reuse the key of an earlier attempt (a retry returns the payer without secrets)'],
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'payer enroll';
    const values = parseFlags(command, args, enrollFlags);
    required(command, values, ['phone', 'name', 'currency']);
    const currency = currencyOfFlag(command, values.currency!);
    const request = {
      idempotencyKey: idempotencyKeyOf(command, values['idempotency-key'], 'payer'),
      phone: values.phone!,
      displayName: values.name!,
      loginAccount: values['login-account'] ?? '',
      currencies: [currency],
      policies: policyOf(command, values, currency),
    };
    const config = configOf(env);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, operatorKey(config), (c) => c.enrollment.enrollPayer(request));
    if (values.json) return printJson(io, { idempotencyKey: request.idempotencyKey, ...messageJson(EnrollPayerResponseSchema, response) });
    const payer = response.payer!;
    io.out(`payer enrolled: ${payer.displayName} (${payer.phone})`);
    io.out(row('payer id', payer.id));
    for (const [code, account] of Object.entries(payer.prepaidAccountIds)) io.out(row(`prepaid account ${code}`, account));
    io.out(row('policy', payer.policies.length === 0 ? 'every payment needs SECOND_CODE' : payer.policies.map(policyText).join(' | ')));
    io.out(row('second-code suite', response.ocraSuite));
    if (response.payerToken === '') {
      io.out(`no secrets: this idempotency key (${request.idempotencyKey}) enrolled the payer before, and they are shown only then`);
      return;
    }
    io.out('Secrets, shown this once (the server keeps the token as a hash and the secret encrypted, and never shows them again):');
    io.out(row('payer token', response.payerToken));
    io.out(row('secret (base32)', response.verificationSecretBase32));
    io.out(row('secret (otpauth URI)', response.verificationSecretUri));
  },
};

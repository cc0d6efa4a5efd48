import { EnrollMerchantResponseSchema } from '../../gen/countersign/v1/enrollment_pb.js';
import { parseFlags, UsageError } from '../cli-errors.js';
import { clientFlagHelp, clientFlags, currencyOfFlag, idempotencyKeyOf, limitOf, required } from './args.js';
import { apiKeyVariable, configOf, operatorKey, serverOf } from './connection.js';
import { messageJson, printJson, row } from './output.js';
import { type ClientCommand, onServer } from './run.js';

/** `countersign merchant enroll`, with the operator key. */

/** Basis points of the amount: 10000 is 100 %. */
const feeBpsMax = 10_000;
const feeBpsDefault = 0;

export const merchantEnroll: ClientCommand = {
  help: {
    name: 'merchant enroll',
    synopsis: '--name N --currency USD [--fee-bps 100] [--per-payment-limit MINOR] [--idempotency-key K] [--json]',
    summary: [
      'enroll a merchant and open its payee account (operator key)',
      'Prints the API key the merchant authenticates with: shown this once, only its hash is kept.',
    ],
    flags: [
      ['--name N', 'the name payers see'],
      ['--currency USD', 'the currency of its payee account (ISO 4217)'],
      ['--fee-bps N', `platform fee in basis points of each payment, 0..${feeBpsMax} (100 = 1 %; default ${feeBpsDefault})`],
      ['--per-payment-limit MINOR', 'the largest payment it may create, minor units (default 0: no limit)'],
      ['--idempotency-key K', 'reuse the key of an earlier attempt (a retry returns the merchant without its key)'],
      ...clientFlagHelp,
    ],
  },
  async run(args, io, env) {
    const command = 'merchant enroll';
    const values = parseFlags(command, args, {
      ...clientFlags,
      name: { type: 'string' },
      currency: { type: 'string' },
      'fee-bps': { type: 'string' },
      'per-payment-limit': { type: 'string' },
      'idempotency-key': { type: 'string' },
    });
    required(command, values, ['name', 'currency']);
    const fee = values['fee-bps'] ?? String(feeBpsDefault);
    if (!/^\d{1,5}$/.test(fee) || Number(fee) > feeBpsMax) throw new UsageError(command, `--fee-bps must be 0..${feeBpsMax} basis points, got "${fee}"`);
    const request = {
      idempotencyKey: idempotencyKeyOf(command, values['idempotency-key'], 'merchant'),
      name: values.name!,
      currencies: [currencyOfFlag(command, values.currency!)],
      feeBasisPoints: Number(fee),
      perPaymentLimit: values['per-payment-limit'] === undefined ? 0n : limitOf(command, '--per-payment-limit', values['per-payment-limit']),
    };
    const config = configOf(env);
    const server = serverOf(command, values.server, config);
    const response = await onServer(command, server, operatorKey(config), (c) => c.enrollment.enrollMerchant(request));
    if (values.json) return printJson(io, { idempotencyKey: request.idempotencyKey, ...messageJson(EnrollMerchantResponseSchema, response) });
    io.out(`merchant enrolled: ${request.name}`);
    io.out(row('merchant id', response.merchantId));
    for (const [currency, account] of Object.entries(response.payeeAccountIds)) io.out(row(`payee account ${currency}`, account));
    io.out(row('fee', `${response.feeBasisPoints} basis points`));
    if (response.apiKey === '') {
      io.out(`no API key: this idempotency key (${request.idempotencyKey}) enrolled the merchant before, and the key is shown only then`);
      return;
    }
    io.out(row('API key', response.apiKey));
    io.out(`The API key is shown this once (the server keeps only its hash): store it now. Payment commands take it as --key or ${apiKeyVariable}.`);
  },
};

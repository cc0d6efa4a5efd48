import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { credentialOverlapSecondsDefault, credentialOverlapSecondsMax } from '../../authz/enrollment.js';
import {
  RevokeApiKeysResponseSchema,
  RevokePayerTokensResponseSchema,
  RotateApiKeyResponseSchema,
  RotatePayerTokenResponseSchema,
} from '../../gen/countersign/v1/enrollment_pb.js';
import { type FlagOptions, parseFlags } from '../cli-errors.js';
import { clientFlagHelp, clientFlags, idempotencyKeyOf, idOf, positiveIntOf } from './args.js';
import { apiKeyVariable, type Clients, configOf, merchantKey, operatorKey, payerToken, payerTokenVariable, serverOf } from './connection.js';
import { isoTime, messageJson, printJson, row } from './output.js';
import { type ClientCommand, onServer } from './run.js';

/**
 * `countersign merchant rotate-key | revoke-key` and `payer rotate-token | revoke-token`: keys
 * have a lifecycle (README "Tenant safety"). Who calls: with `--merchant ID` / `--payer ID` and
 * no `--key` / `--token`, the operator key (any record); otherwise the record's own credential,
 * which may only reissue itself.
 */

interface Holder {
  /** `merchant` or `payer`: the command group and the id flag. */
  group: 'merchant' | 'payer';
  /** The credential as the output names it. */
  noun: string;
  /** The own-credential flag and its variable. */
  credentialFlag: 'key' | 'token';
  variable: string;
  own(command: string, flag: string | undefined, env: NodeJS.ProcessEnv): string;
}

const merchants: Holder = {
  group: 'merchant',
  noun: 'API key',
  credentialFlag: 'key',
  variable: apiKeyVariable,
  own: (c, f, env) => merchantKey(c, f, configOf(env)),
};
const payers: Holder = {
  group: 'payer',
  noun: 'payer token',
  credentialFlag: 'token',
  variable: payerTokenVariable,
  own: (c, f, env) => payerToken(c, f, configOf(env)),
};

/** What one command sends and how its answer reads. */
interface Reissue<S extends DescMessage> {
  holder: Holder;
  op: 'rotate' | 'revoke';
  schema: S;
  call(clients: Clients, request: { idempotencyKey: string; id: string; overlapSeconds: number }): Promise<MessageShape<S>>;
  answer(response: MessageShape<S>): { id: string; credential: string; previousUntil?: Timestamp | undefined };
}

function reissueCommand<S extends DescMessage>(spec: Reissue<S>): ClientCommand {
  const { holder, op } = spec;
  const name = `${holder.group} ${op}-${holder.credentialFlag}`;
  const idFlag = holder.group;
  const text = { type: 'string' } as const;
  const flags: FlagOptions = {
    ...clientFlags,
    [idFlag]: text,
    [holder.credentialFlag]: text,
    'idempotency-key': text,
    ...(op === 'rotate' ? { 'overlap-seconds': text } : {}),
  };
  return {
    help: {
      name,
      synopsis: `[--${idFlag} ID] [--${holder.credentialFlag} ${holder.credentialFlag.toUpperCase()}]${op === 'rotate' ? ' [--overlap-seconds N]' : ''} [--idempotency-key K] [--json]`,
      summary:
        op === 'rotate'
          ? [
              `issue the ${holder.group} a new ${holder.noun}; the current one keeps working for the overlap, then is refused`,
              `Prints the new ${holder.noun}: shown this once, only its hash is kept.`,
            ]
          : [
              `revoke every ${holder.noun} of the ${holder.group} at once and issue a new one`,
              `Prints the new ${holder.noun}: shown this once, only its hash is kept.`,
            ],
      flags: [
        [`--${idFlag} ID`, `the ${holder.group}; with no --${holder.credentialFlag}, called with the operator key`],
        [
          `--${holder.credentialFlag} ${holder.credentialFlag.toUpperCase()}`,
          `the ${holder.group}'s own ${holder.noun}, reissuing itself (default ${holder.variable})`,
        ],
        ...(op === 'rotate'
          ? [
              [
                '--overlap-seconds N',
                `how long the current one keeps working, 1..${credentialOverlapSecondsMax} (default ${credentialOverlapSecondsDefault}: 24 h)`,
              ] as const,
            ]
          : []),
        ['--idempotency-key K', `reuse the key of an earlier attempt (a retry returns no ${holder.noun})`],
        ...clientFlagHelp,
      ],
    },
    async run(args, io, env) {
      const values = parseFlags(name, args, flags) as Record<string, string | boolean | undefined>;
      const id = typeof values[idFlag] === 'string' ? idOf(name, `--${idFlag}`, values[idFlag] as string) : '';
      const given = values[holder.credentialFlag] as string | undefined;
      const config = configOf(env);
      const credential = given === undefined && id !== '' ? operatorKey(config) : holder.own(name, given, env);
      const overlap = values['overlap-seconds'] as string | undefined;
      const request = {
        idempotencyKey: idempotencyKeyOf(name, values['idempotency-key'] as string | undefined, `${op}-${holder.credentialFlag}`),
        id,
        overlapSeconds: overlap === undefined ? 0 : positiveIntOf(name, '--overlap-seconds', overlap, credentialOverlapSecondsMax),
      };
      const response = await onServer(name, serverOf(name, values.server as string | undefined, config), credential, (c) => spec.call(c, request));
      if (values.json === true) return printJson(io, { idempotencyKey: request.idempotencyKey, ...messageJson(spec.schema, response) });
      const answer = spec.answer(response);
      io.out(`${holder.noun} ${op === 'rotate' ? 'rotated' : 'revoked'}: ${holder.group} ${answer.id}`);
      if (answer.previousUntil !== undefined) io.out(row(`previous ${holder.credentialFlag} until`, isoTime(answer.previousUntil)));
      if (op === 'revoke') io.out(row(`previous ${holder.credentialFlag}s`, 'refused from now on'));
      if (answer.credential === '') {
        io.out(
          `no new ${holder.noun}: this idempotency key (${request.idempotencyKey}) ${op === 'rotate' ? 'rotated' : 'revoked'} before, and the ${holder.noun} is shown only then`,
        );
        return;
      }
      io.out(row(`new ${holder.noun}`, answer.credential));
      io.out(`The ${holder.noun} is shown this once (the server keeps only its hash): store it now.`);
    },
  };
}

export const merchantRotateKey = reissueCommand({
  holder: merchants,
  op: 'rotate',
  schema: RotateApiKeyResponseSchema,
  call: (c, r) => c.enrollment.rotateApiKey({ idempotencyKey: r.idempotencyKey, merchantId: r.id, overlapSeconds: r.overlapSeconds }),
  answer: (r) => ({ id: r.merchantId, credential: r.apiKey, previousUntil: r.previousKeyExpiresAt }),
});

export const merchantRevokeKey = reissueCommand({
  holder: merchants,
  op: 'revoke',
  schema: RevokeApiKeysResponseSchema,
  call: (c, r) => c.enrollment.revokeApiKeys({ idempotencyKey: r.idempotencyKey, merchantId: r.id }),
  answer: (r) => ({ id: r.merchantId, credential: r.apiKey }),
});

export const payerRotateToken = reissueCommand({
  holder: payers,
  op: 'rotate',
  schema: RotatePayerTokenResponseSchema,
  call: (c, r) => c.enrollment.rotatePayerToken({ idempotencyKey: r.idempotencyKey, payerId: r.id, overlapSeconds: r.overlapSeconds }),
  answer: (r) => ({ id: r.payerId, credential: r.payerToken, previousUntil: r.previousTokenExpiresAt }),
});

export const payerRevokeToken = reissueCommand({
  holder: payers,
  op: 'revoke',
  schema: RevokePayerTokensResponseSchema,
  call: (c, r) => c.enrollment.revokePayerTokens({ idempotencyKey: r.idempotencyKey, payerId: r.id }),
  answer: (r) => ({ id: r.payerId, credential: r.payerToken }),
});

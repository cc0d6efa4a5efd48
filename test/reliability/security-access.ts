import { randomBytes } from 'node:crypto';
import type { DescService } from '@bufbuild/protobuf';
import { Code } from '@connectrpc/connect';
import { deriveSecondCode } from '../../authz/codes/challenge.js';
import { base32Decode } from '../../authz/codes/secret.js';
import { Channel, Factor, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { type EnrollMerchantResponse, EnrollmentService, type EnrollPayerResponse } from '../../gen/countersign/v1/enrollment_pb.js';
import { type GetAccountResponse, LedgerService } from '../../gen/countersign/v1/ledger_pb.js';
import { type ConfirmPaymentResponse, type GetChallengeResponse, type ListPendingPaymentsResponse, PayerService } from '../../gen/countersign/v1/payer_pb.js';
import {
  type BatchConfirmPaymentsResponse,
  type CreatePaymentResponse,
  type GetPaymentResponse,
  type ListPaymentsResponse,
  PaymentService,
} from '../../gen/countersign/v1/payments_pb.js';
import { TelcoBridgeService } from '../../gen/countersign/v1/telco_pb.js';
import type { ReliabilityEnv } from './security-env.js';
import { type Credential, codeLabel, type Outcome, RpcClients, statusName, type Wire } from './security-rpc.js';

/**
 * Access control (issue 7): a merchant never sees or acts on another merchant's payment, a
 * payer never on another payer's — NOT_FOUND, so existence does not leak — even holding the
 * right code; and no method of any service answers a call without valid credentials.
 */

interface Party {
  id: string;
  key: string;
  account: string;
  secret?: Buffer;
}

function must<T>(what: string, o: Outcome): T {
  if (!o.ok) throw new Error(`${what}: ${statusName(o)} ${o.message}`);
  return o.value as T;
}

async function merchant(env: ReliabilityEnv, name: string, secrets: Set<string>): Promise<Party> {
  const r = must<EnrollMerchantResponse>(
    'enroll merchant',
    await env.rpc.unary(
      'grpc-js',
      EnrollmentService,
      'enrollMerchant',
      { idempotencyKey: `ac-${randomBytes(6).toString('hex')}`, name, currencies: ['USD'], feeBasisPoints: 0 },
      { key: env.adminKey },
    ),
  );
  secrets.add(r.apiKey);
  return { id: r.merchantId, key: r.apiKey, account: r.payeeAccountIds.USD! };
}

async function payer(env: ReliabilityEnv, secrets: Set<string>): Promise<Party> {
  const phone = `+1628944${String(Math.floor(Math.random() * 1e4)).padStart(4, '0')}`;
  const r = must<EnrollPayerResponse>(
    'enroll payer',
    await env.rpc.unary(
      'grpc-js',
      EnrollmentService,
      'enrollPayer',
      {
        idempotencyKey: `acp-${randomBytes(6).toString('hex')}`,
        phone,
        displayName: 'Payer',
        currencies: ['USD'],
        policies: [{ currency: 'USD', noFactorBelow: 0n, oneFactorUpTo: 1000_00n, oneFactor: Factor.SECOND_CODE, moreFactors: [Factor.SECOND_CODE] }],
      },
      { key: env.adminKey },
    ),
  );
  secrets.add(r.payerToken);
  secrets.add(r.verificationSecretBase32);
  const account = r.payer!.prepaidAccountIds.USD!;
  must(
    'fund',
    await env.rpc.unary(
      'grpc-js',
      LedgerService,
      'fundAccount',
      { idempotencyKey: `acf-${r.payer!.id}`, accountId: account, amount: 100_00n, currency: 'USD' },
      { key: env.adminKey },
    ),
  );
  return { id: r.payer!.id, key: r.payerToken, account, secret: base32Decode(r.verificationSecretBase32) };
}

interface Probe {
  what: string;
  service: DescService;
  method: string;
  input: object;
  as: Party;
  stream?: boolean;
  /** Acceptable codes; the default is NOT_FOUND. */
  expect?: Code[];
}

/**
 * Shop B and payer Y against shop A's payment for payer X, holding its right second code:
 * everything NOT_FOUND (or PERMISSION_DENIED where a payer names another payer), nothing
 * consumed; then X confirms with that code and the payment succeeds.
 */
export async function checkCrossAccess(env: ReliabilityEnv, secrets: Set<string>, counts: Record<string, number>, violations: string[]): Promise<void> {
  const [shopA, shopB, x, y] = [
    await merchant(env, 'Shop A', secrets),
    await merchant(env, 'Shop B', secrets),
    await payer(env, secrets),
    await payer(env, secrets),
  ];
  const created = must<CreatePaymentResponse>(
    'create',
    await env.rpc.unary(
      'grpc-js',
      PaymentService,
      'createPayment',
      {
        idempotencyKey: `acx-${randomBytes(4).toString('hex')}`,
        payer: { case: 'payerId', value: x.id },
        amount: 7_00n,
        currency: 'USD',
        description: 'victim payment',
        channel: Channel.APP,
      },
      { key: shopA.key },
    ),
  );
  const id = created.payment!.id;
  const challenge = must<GetChallengeResponse>(
    'get challenge',
    await env.rpc.unary('grpc-js', PayerService, 'getChallenge', { paymentId: id }, { key: x.key }),
  );
  const code = deriveSecondCode(x.secret!, { firstCode: challenge.firstCode, amount: 7_00n, currency: 'USD', payeeAccountId: challenge.payeeAccountId });
  secrets.add(challenge.firstCode);
  secrets.add(code);
  const k = () => `ack-${randomBytes(6).toString('hex')}`;
  const probes: Probe[] = [
    { what: "shop B reads shop A's payment", service: PaymentService, method: 'getPayment', input: { paymentId: id }, as: shopB },
    {
      what: "shop B cancels shop A's payment",
      service: PaymentService,
      method: 'cancelPayment',
      input: { idempotencyKey: k(), paymentId: id, reason: 'mine now' },
      as: shopB,
    },
    {
      what: "shop B confirms shop A's payment with the right code",
      service: PaymentService,
      method: 'confirmPaymentAsMerchant',
      input: { idempotencyKey: k(), paymentId: id, secondCode: code },
      as: shopB,
    },
    { what: "shop B watches shop A's payment", service: PaymentService, method: 'watchPayments', input: { paymentId: id }, as: shopB, stream: true },
    { what: "shop B reads shop A's payee account", service: LedgerService, method: 'getAccount', input: { accountId: shopA.account }, as: shopB },
    { what: "shop B reads payer X's account", service: LedgerService, method: 'getAccount', input: { accountId: x.account }, as: shopB },
    { what: "shop B reads payer X's directory entry", service: EnrollmentService, method: 'getPayer', input: { payerId: x.id }, as: shopB },
    {
      what: "payer Y confirms payer X's payment with the right code",
      service: PayerService,
      method: 'confirmPayment',
      input: { idempotencyKey: k(), paymentId: id, proof: { case: 'secondCode', value: code } },
      as: y,
    },
    {
      what: "payer Y declines payer X's payment",
      service: PayerService,
      method: 'declinePayment',
      input: { idempotencyKey: k(), paymentId: id, reason: 'no' },
      as: y,
    },
    { what: "payer Y reads payer X's challenge (and first code)", service: PayerService, method: 'getChallenge', input: { paymentId: id }, as: y },
    {
      what: "payer Y lists payer X's pending payments",
      service: PayerService,
      method: 'listPendingPayments',
      input: { payerId: x.id },
      as: y,
      expect: [Code.NotFound, Code.PermissionDenied],
    },
    {
      what: "payer Y watches payer X's pending payments",
      service: PayerService,
      method: 'watchPendingPayments',
      input: { payerId: x.id },
      as: y,
      stream: true,
      expect: [Code.NotFound, Code.PermissionDenied],
    },
    { what: "payer Y reads payer X's directory entry", service: EnrollmentService, method: 'getPayer', input: { payerId: x.id }, as: y },
    { what: "payer Y reads payer X's account", service: LedgerService, method: 'getAccount', input: { accountId: x.account }, as: y },
    { what: "payer Y lists payer X's transfers", service: LedgerService, method: 'listAccountTransfers', input: { accountId: x.account }, as: y },
    { what: "payer Y reads payer X's balance history", service: LedgerService, method: 'getAccountBalances', input: { accountId: x.account }, as: y },
    { what: "payer Y reads shop A's account", service: LedgerService, method: 'getAccount', input: { accountId: shopA.account }, as: y },
  ];
  let probed = 0;
  for (const wire of ['grpc-js', 'connect'] as Wire[]) {
    for (const p of probes) {
      const input = 'idempotencyKey' in p.input ? { ...p.input, idempotencyKey: k() } : p.input;
      const o = p.stream
        ? await env.rpc.stream(wire, p.service, p.method, input, { key: p.as.key })
        : await env.rpc.unary(wire, p.service, p.method, input, { key: p.as.key });
      probed += 1;
      const expect = p.expect ?? [Code.NotFound];
      if (o.ok || !expect.includes(o.code)) violations.push(`access: ${p.what} over ${wire}: ${statusName(o)}, expected ${expect.map(codeLabel).join('|')}`);
    }
    await checkLists(env, wire, shopB, y, x, id, violations);
    await checkBatchConfirm(env, wire, shopB, id, code, violations);
  }
  counts.accessProbes = probed;
  const after = must<GetPaymentResponse>('get payment', await env.rpc.unary('grpc-js', PaymentService, 'getPayment', { paymentId: id }, { key: shopA.key }))
    .payment!;
  if (after.state !== PaymentState.CHALLENGED || after.attemptsLeft !== 5)
    violations.push(
      `access: after the cross-merchant and cross-payer attempts the payment is ${PaymentState[after.state]} with ${after.attemptsLeft} attempts left, expected CHALLENGED with 5`,
    );
  const own = await env.rpc.unary(
    'grpc-js',
    PayerService,
    'confirmPayment',
    { idempotencyKey: k(), paymentId: id, proof: { case: 'secondCode', value: code } },
    { key: x.key },
  );
  const state = own.ok ? (own.value as ConfirmPaymentResponse).payment!.state : undefined;
  if (state !== PaymentState.SUCCEEDED)
    violations.push(`access: payer X's own right code was answered ${own.ok ? PaymentState[state!] : statusName(own)}, expected SUCCEEDED`);
  const a = must<GetAccountResponse>(
    'get account',
    await env.rpc.unary('grpc-js', LedgerService, 'getAccount', { accountId: shopA.account }, { key: env.adminKey }),
  ).account!;
  const b = must<GetAccountResponse>(
    'get account',
    await env.rpc.unary('grpc-js', LedgerService, 'getAccount', { accountId: shopB.account }, { key: env.adminKey }),
  ).account!;
  if (a.creditsPosted !== 7_00n || b.creditsPosted !== 0n)
    violations.push(`access: shop A was credited ${a.creditsPosted} and shop B ${b.creditsPosted}; expected 700 and 0`);
}

/** Lists name only the caller's own payments. */
async function checkLists(env: ReliabilityEnv, wire: Wire, shopB: Party, y: Party, x: Party, id: string, violations: string[]): Promise<void> {
  const list = await env.rpc.unary(wire, PaymentService, 'listPayments', { payerId: x.id }, { key: shopB.key });
  if (!list.ok || (list.value as ListPaymentsResponse).payments.some((p) => p.id === id))
    violations.push(`access: shop B's ListPayments(payer X) over ${wire} ${list.ok ? "included shop A's payment" : `failed: ${statusName(list)}`}`);
  const pending = await env.rpc.unary(wire, PayerService, 'listPendingPayments', {}, { key: y.key });
  if (!pending.ok || (pending.value as ListPendingPaymentsResponse).payments.some((p) => p.id === id))
    violations.push(`access: payer Y's own pending list over ${wire} ${pending.ok ? "included payer X's payment" : `failed: ${statusName(pending)}`}`);
}

async function checkBatchConfirm(env: ReliabilityEnv, wire: Wire, shopB: Party, id: string, code: string, violations: string[]): Promise<void> {
  const o = await env.rpc.unary(
    wire,
    PaymentService,
    'batchConfirmPayments',
    {
      idempotencyKey: `acb-${randomBytes(4).toString('hex')}`,
      items: [{ idempotencyKey: `acbi-${randomBytes(4).toString('hex')}`, paymentId: id, secondCode: code }],
    },
    { key: shopB.key },
  );
  const item = o.ok ? (o.value as BatchConfirmPaymentsResponse).results[0]?.outcome : undefined;
  if (item?.case !== 'error' || item.value.code !== Code.NotFound)
    violations.push(
      `access: shop B's BatchConfirmPayments of shop A's payment with the right code over ${wire}: ${o.ok ? (item?.case ?? 'no result') : statusName(o)}, expected the item NOT_FOUND`,
    );
}

// ------------------------------------------------------------------------------ unauthenticated

/** Credentials that must all be refused: none, unknown keys, malformed headers, near misses of a real key. */
export function badCredentials(realKey: string): { name: string; credential: Credential }[] {
  return [
    { name: 'no credentials', credential: undefined },
    { name: 'an unknown bearer key', credential: { key: `cs_live_${randomBytes(18).toString('base64url')}` } },
    { name: 'an empty bearer', credential: { headers: { authorization: 'Bearer ' } } },
    { name: 'basic auth', credential: { headers: { authorization: `Basic ${Buffer.from(`admin:${realKey}`).toString('base64')}` } } },
    { name: 'an unknown x-api-key', credential: { headers: { 'x-api-key': `cs_live_${randomBytes(12).toString('hex')}` } } },
    { name: 'a 300-character key', credential: { key: `cs_live_${'k'.repeat(300)}` } },
    { name: 'a real key with one more character', credential: { key: `${realKey}x` } },
    { name: 'a real key without its last character', credential: { key: realKey.slice(0, -1) } },
  ];
}

/** Every method of every authz service on both ports, and of the telco bridge's service, refused with UNAUTHENTICATED. */
export async function checkUnauthenticated(
  env: ReliabilityEnv,
  bridgeAddress: string | undefined,
  counts: Record<string, number>,
  violations: string[],
): Promise<void> {
  const services: DescService[] = [PaymentService, PayerService, EnrollmentService, LedgerService];
  let calls = 0;
  const failures = new Map<string, number>();
  const check = async (rpc: RpcClients, wire: Wire, service: DescService, credentials: ReturnType<typeof badCredentials>) => {
    for (const method of service.methods) {
      for (const { name, credential } of credentials) {
        const streaming = method.methodKind === 'server_streaming';
        const o = streaming
          ? await rpc.stream(wire, service, method.localName, {}, credential)
          : await rpc.unary(wire, service, method.localName, {}, credential);
        calls += 1;
        if (o.ok || o.code !== Code.Unauthenticated) {
          const key = `${service.name}/${method.name} over ${wire} with ${name}: ${statusName(o)}`;
          failures.set(key, (failures.get(key) ?? 0) + 1);
        }
      }
    }
  };
  for (const wire of ['grpc-js', 'connect'] as Wire[]) for (const service of services) await check(env.rpc, wire, service, badCredentials(env.adminKey));
  if (bridgeAddress !== undefined) {
    const bridge = new RpcClients(bridgeAddress, 'http://127.0.0.1:1');
    try {
      await check(bridge, 'grpc-js', TelcoBridgeService, badCredentials(env.adminKey));
    } finally {
      bridge.close();
    }
  }
  counts.unauthenticatedCalls = calls;
  [...failures.keys()].slice(0, 20).forEach((f) => violations.push(`unauthenticated: ${f}, expected UNAUTHENTICATED`));
  if (failures.size > 20)
    violations.push(`unauthenticated: ${failures.size - 20} more methods answered a call without valid credentials with something else than UNAUTHENTICATED`);
}

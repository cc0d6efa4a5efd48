import { create } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { invalidArgument, unauthenticated } from '../../authz/errors.js';
import type { PaymentEvents } from '../../authz/events.js';
import type { Payment } from '../../authz/model.js';
import type { ConfirmItem, CreatePaymentInput, PaymentsService } from '../../authz/payments.js';
import type { Directory } from '../../authz/ports.js';
import { batchItemsMax, checkHexId, checkIdempotencyKey } from '../../authz/validation.js';
import { ItemErrorSchema } from '../../gen/countersign/v1/common_pb.js';
import type { CreatePaymentRequest, PaymentService } from '../../gen/countersign/v1/payments_pb.js';
import { channelFromProto, factorFromProto, paymentToProto, simFromProto, stateFromProto } from '../convert.js';
import { toConnectError } from '../rpc/errors.js';
import { decodePageToken, encodePageToken, merchantOf, pageSize } from './caller.js';

function createInput(req: CreatePaymentRequest): CreatePaymentInput {
  return {
    idempotencyKey: req.idempotencyKey,
    ...(req.payer.case === 'payNumber' ? { payNumber: req.payer.value } : {}),
    ...(req.billableLineId === '' ? {} : { billableLineId: req.billableLineId }),
    ...(req.originSim === undefined ? {} : { originSim: simFromProto(req.originSim, 'origin_sim') }),
    ...(req.payer.case === 'payerId' ? { payerId: req.payer.value } : {}),
    ...(req.payer.case === 'payerPhone' ? { payerPhone: req.payer.value } : {}),
    ...(req.payer.case === 'loginAccount' ? { loginAccount: req.payer.value } : {}),
    ...(req.authPassword === '' ? {} : { authPassword: req.authPassword }),
    payeeAccountId: req.payeeAccountId,
    amount: req.amount,
    currency: req.currency,
    description: req.description,
    channel: channelFromProto(req.channel),
    requestedFactors: req.requestedFactors.map(factorFromProto),
  };
}

function checkBatch(batchKey: string, items: unknown[]): void {
  checkIdempotencyKey(batchKey);
  if (items.length === 0) throw invalidArgument('items', 'must hold at least one item');
  if (items.length > batchItemsMax) throw invalidArgument('items', `must hold at most ${batchItemsMax} items`);
}

/**
 * Runs the items as one batch (`run`, the domain's batch path); one bad item becomes that item's
 * error, never the batch's. Each item is converted on its own first: an item whose conversion
 * throws synchronously (e.g. an unknown enum value in createInput) gets that error and the others
 * still run, so no item is abandoned half-started with its rejection unhandled.
 */
async function eachItem<T, I>(items: T[], convert: (item: T) => I, run: (inputs: I[]) => Promise<PromiseSettledResult<Payment>[]>) {
  const settled = new Array<PromiseSettledResult<Payment>>(items.length);
  const ready: { index: number; input: I }[] = [];
  items.forEach((item, index) => {
    try {
      ready.push({ index, input: convert(item) });
    } catch (reason) {
      settled[index] = { status: 'rejected', reason };
    }
  });
  const ran = ready.length === 0 ? [] : await run(ready.map((r) => r.input));
  ready.forEach((r, i) => (settled[r.index] = ran[i]!));
  return settled.map((s, index) => {
    if (s.status === 'fulfilled') return { index, outcome: { case: 'payment' as const, value: paymentToProto(s.value) } };
    const error = toConnectError(s.reason);
    return { index, outcome: { case: 'error' as const, value: create(ItemErrorSchema, { code: error.code, message: error.rawMessage }) } };
  });
}

/** PaymentService: the merchant side. A merchant sees and acts on its own payments only. */
export function paymentServiceImpl(deps: {
  payments: PaymentsService;
  directory: Directory;
  events: PaymentEvents;
  listPayments: (q: { merchantId: string; payerId?: string; states: Payment['state'][]; afterId?: string; limit: number }) => Promise<Payment[]>;
}): ServiceImpl<typeof PaymentService> {
  const merchantFor = async (ctx: HandlerContext) => {
    const id = merchantOf(ctx);
    const merchant = await deps.directory.getMerchant(id);
    if (merchant === undefined) throw unauthenticated('merchant no longer enrolled');
    return merchant;
  };
  return {
    async createPayment(req, ctx) {
      const input = createInput(req);
      // The merchant's record is read while the payer's is (PaymentsService.create awaits both).
      const payment = await deps.payments.create(merchantFor(ctx), input);
      return { payment: paymentToProto(payment) };
    },
    async getPayment(req, ctx) {
      return { payment: paymentToProto(await deps.payments.get({ kind: 'merchant', merchantId: merchantOf(ctx) }, req.paymentId)) };
    },
    async cancelPayment(req, ctx) {
      const payment = await deps.payments.refuse({ kind: 'merchant', merchantId: merchantOf(ctx) }, req.paymentId, req.idempotencyKey, req.reason);
      return { payment: paymentToProto(payment) };
    },
    async listPayments(req, ctx) {
      if (req.payerId !== '') checkHexId(req.payerId, 'payer_id');
      const limit = pageSize(req.pageSize);
      const afterId = decodePageToken(req.pageToken);
      const page = await deps.listPayments({
        merchantId: merchantOf(ctx),
        ...(req.payerId === '' ? {} : { payerId: req.payerId }),
        states: req.states.map(stateFromProto),
        ...(afterId === undefined ? {} : { afterId }),
        limit,
      });
      return { payments: page.map((p) => paymentToProto(p)), nextPageToken: page.length < limit ? '' : encodePageToken(page[page.length - 1]?.id) };
    },
    async *watchPayments(req, ctx) {
      const merchantId = merchantOf(ctx);
      const filter = (p: Payment) => p.merchantId === merchantId && (req.paymentId === '' || p.id === req.paymentId);
      // Subscribed before the snapshot is read: no change can fall between the two.
      const updates = deps.events.subscribe(filter, ctx.signal, `merchant:${merchantId}`);
      if (req.paymentId !== '') {
        const current = await deps.payments.get({ kind: 'merchant', merchantId }, req.paymentId);
        yield { payment: paymentToProto(current) };
      }
      for await (const payment of updates) yield { payment: paymentToProto(payment) };
    },
    async batchCreatePayments(req, ctx) {
      checkBatch(req.idempotencyKey, req.items);
      const merchant = await merchantFor(ctx);
      return { results: await eachItem(req.items, createInput, (inputs) => deps.payments.createMany(merchant, inputs)) };
    },
    async batchConfirmPayments(req, ctx) {
      checkBatch(req.idempotencyKey, req.items);
      const caller = { kind: 'merchant' as const, merchantId: merchantOf(ctx) };
      const confirmItem = (item: (typeof req.items)[number]): ConfirmItem => ({
        paymentId: item.paymentId,
        idempotencyKey: item.idempotencyKey,
        proof: { kind: 'second_code', secondCode: item.secondCode },
      });
      return { results: await eachItem(req.items, confirmItem, (items) => deps.payments.confirmMany(caller, items)) };
    },
    async confirmPaymentAsMerchant(req, ctx) {
      const caller = { kind: 'merchant' as const, merchantId: merchantOf(ctx) };
      const payment = await deps.payments.confirm(caller, req.paymentId, req.idempotencyKey, { kind: 'second_code', secondCode: req.secondCode });
      return { payment: paymentToProto(payment) };
    },
  };
}

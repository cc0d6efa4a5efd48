import { timestampMs } from '@bufbuild/protobuf/wkt';
import { type Client, Code, ConnectError, createClient } from '@connectrpc/connect';
import { createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import { type BankDecision, type BankGateway, type BankKey, BankRequestError, BankUnavailableError, type CardPaymentRequest } from '../../authz/ports.js';
import {
  type AuthorizeCardPaymentResponse,
  BankFrontEndService,
  type GetPublicKeyResponse,
  BankDecision as ProtoBankDecision,
} from '../../gen/countersign/v1/bank_pb.js';

/**
 * The BankGateway port over gRPC (connect-node's gRPC transport, HTTP/2 plaintext) to a bank
 * front-end at `host:port`. Every call has a deadline; anything but a decision or a refusal
 * fails closed as BankUnavailableError. The public key is cached until shortly before it expires.
 */

/** Per-call deadline, milliseconds. */
export const bankDeadlineMsDefault = 2_000;
/** A cached public key is fetched again this long before its expires_at, milliseconds. */
export const publicKeyRefreshMarginMs = 5 * 60 * 1000;
/** Raw X25519 public key. */
const publicKeyBytes = 32;

/** Status codes that mean the bank refused the request itself (not an outage). */
const refusalCodes = new Set([Code.InvalidArgument, Code.FailedPrecondition, Code.AlreadyExists]);

export interface GrpcBankGatewayOptions {
  /** host:port of the bank front-end. */
  address: string;
  /** Per-call deadline, milliseconds (bankDeadlineMsDefault). */
  bankDeadlineMs: number;
  now: () => number;
}

export class GrpcBankGateway implements BankGateway {
  private readonly sessions: Http2SessionManager;
  private readonly client: Client<typeof BankFrontEndService>;
  private cachedKey: { key: BankKey; refreshAtMs: number } | undefined;
  private fetching: Promise<BankKey> | undefined;
  private closed = false;

  constructor(private readonly options: GrpcBankGatewayOptions) {
    const baseUrl = `http://${options.address}`;
    this.sessions = new Http2SessionManager(baseUrl);
    this.client = createClient(BankFrontEndService, createGrpcTransport({ baseUrl, sessionManager: this.sessions }));
  }

  async publicKey(): Promise<BankKey> {
    this.assertOpen();
    const cached = this.cachedKey;
    if (cached !== undefined && this.options.now() < cached.refreshAtMs) return cached.key;
    this.fetching ??= this.fetchKey().finally(() => (this.fetching = undefined));
    return this.fetching;
  }

  async authorize(request: CardPaymentRequest): Promise<BankDecision> {
    this.assertOpen();
    const e = request.envelope;
    let response: AuthorizeCardPaymentResponse;
    try {
      response = await this.client.authorizeCardPayment(
        {
          idempotencyKey: request.paymentId,
          paymentId: request.paymentId,
          merchantId: request.merchantId,
          amount: request.amount,
          currency: request.currency,
          keyId: e.keyId,
          envelope: { suite: e.suite, keyId: e.keyId, ephemeralPublicKey: e.ephemeralPublicKey, nonce: e.nonce, ciphertext: e.ciphertext },
        },
        { timeoutMs: this.options.bankDeadlineMs },
      );
    } catch (error) {
      throw callFailure(error);
    }
    return decisionOf(response);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sessions.abort();
  }

  private async fetchKey(): Promise<BankKey> {
    let response: GetPublicKeyResponse;
    try {
      response = await this.client.getPublicKey({}, { timeoutMs: this.options.bankDeadlineMs });
    } catch (error) {
      throw callFailure(error);
    }
    const key = keyOf(response);
    this.cachedKey = { key, refreshAtMs: key.expiresAtMs - publicKeyRefreshMarginMs };
    return key;
  }

  private assertOpen(): void {
    if (this.closed) throw new BankUnavailableError('bank gateway closed');
  }
}

/** Refusals of the request → BankRequestError; everything else (outage, deadline, internal) → BankUnavailableError. */
function callFailure(error: unknown): Error {
  const e = ConnectError.from(error);
  if (refusalCodes.has(e.code)) return new BankRequestError(`bank refused the request (${Code[e.code]}): ${e.rawMessage}`, { cause: error });
  return new BankUnavailableError(`bank unavailable (${Code[e.code]})`, { cause: error });
}

function decisionOf(r: AuthorizeCardPaymentResponse): BankDecision {
  if (r.decision === ProtoBankDecision.APPROVED) {
    if (r.authorizationCode === '') throw new BankUnavailableError('bank approved without an authorization code (malformed answer)');
    return { decision: 'APPROVED', reasonCode: r.reasonCode, reason: r.reason, authorizationCode: r.authorizationCode };
  }
  if (r.decision === ProtoBankDecision.DECLINED) return { decision: 'DECLINED', reasonCode: r.reasonCode, reason: r.reason };
  throw new BankUnavailableError('bank answered without a decision (malformed answer)');
}

function keyOf(r: GetPublicKeyResponse): BankKey {
  if (r.keyId === '' || r.suite === '' || r.publicKey.length !== publicKeyBytes || r.expiresAt === undefined) {
    throw new BankUnavailableError('bank answered GetPublicKey without a usable key (malformed answer)');
  }
  return { keyId: r.keyId, suite: r.suite, publicKey: r.publicKey, expiresAtMs: timestampMs(r.expiresAt) };
}

import { Writable } from 'node:stream';
import { create, type Message } from '@bufbuild/protobuf';
import { ConnectError } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { PaymentSchema, PaymentState } from '../../gen/countersign/v1/common_pb.js';
import { type ConfirmPaymentRequest, ConfirmPaymentResponseSchema, PayerService } from '../../gen/countersign/v1/payer_pb.js';
import {
  type SendSmsRequest,
  type StartCallRequest,
  type StreamEventsRequest,
  type StreamEventsResponse,
  TelcoBridgeService,
} from '../../gen/countersign/v1/telco_pb.js';
import { grpcServiceDefinition } from '../../services/rpc/grpc-server.js';
import { ErrorInfoSchema, grpcStatusDetailsBin } from '../../services/rpc/status-details.js';
import { startTelcoBridge, type TelcoBridge } from '../../services/telco.js';
import type { BridgeLimits } from '../../telco-bridge/bridge.js';
import { Handset } from '../../telco-bridge/simulator/handset.js';
import { type Smsc, type SmscOptions, startSmsc } from '../../telco-bridge/simulator/smsc.js';
import { startVoiceProvider, type VoiceProvider } from '../../telco-bridge/simulator/voice-provider.js';
import type { SmppChannelOptions } from '../../telco-bridge/smpp-channel.js';

/** Every wait in these tests is bounded by this, ms. */
export const waitMs = 8_000;

// ----------------------------------------------------------------------------- signals

/**
 * Wakes the waiters when something they watch changes (an event arrives, a request is received,
 * a counter moves, a line is written). Waits re-check their condition on each change, never on a
 * timer; `waitMs` only bounds how long a failing test takes to say so.
 */
export class Changes {
  private readonly waiters = new Set<() => void>();

  notify(): void {
    for (const check of [...this.waiters]) check();
  }

  /**
   * Resolves once `condition()` is true (checked now and after every change); rejects with what
   * `condition()` throws, or after `waitMs` with `what` and `seen()`.
   */
  until(condition: () => boolean, what: string, seen: () => string = () => ''): Promise<void> {
    return new Promise((resolve, reject) => {
      const done = (error?: unknown) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error === undefined) resolve();
        else reject(error instanceof Error ? error : new Error(String(error)));
      };
      const check = () => {
        try {
          if (condition()) done();
        } catch (error) {
          done(error);
        }
      };
      const timer = setTimeout(() => {
        const got = seen();
        done(new Error(`${what}: not within ${waitMs} ms${got === '' ? '' : `; ${got}`}`));
      }, waitMs);
      this.waiters.add(check);
      check();
    });
  }
}

/**
 * Makes every numeric field of `counters` (an object its owner keeps updating, such as the
 * bridge's SMPP stats or the SMSC's) notify `changes` when it is written: a counter to wait on.
 * Reads and writes behave as before.
 */
export function watchCounters(counters: object, changes: Changes): void {
  for (const [key, initial] of Object.entries(counters)) {
    if (typeof initial !== 'number') continue;
    let value = initial;
    Object.defineProperty(counters, key, {
      enumerable: true,
      configurable: true,
      get: () => value,
      set: (next: number) => {
        value = next;
        changes.notify();
      },
    });
  }
}

/** A stream that keeps what is written to it (the console channel's output), to wait on. */
export interface TextSink {
  stream: Writable;
  text(): string;
  /** Resolves once the text written so far includes `expected`. */
  waitFor(expected: string): Promise<void>;
}

export function textSink(): TextSink {
  const changes = new Changes();
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString('utf8');
      changes.notify();
      done();
    },
  });
  return {
    stream,
    text: () => text,
    waitFor: (expected) =>
      changes.until(
        () => text.includes(expected),
        `output "${expected}"`,
        () => `got ${JSON.stringify(text)}`,
      ),
  };
}
export const bridgeKey = 'bridge-service-key-for-tests';
export const authzKeyOfBridge = 'authz-key-the-bridge-presents';
export const accountSid = 'AC0123456789abcdef0123456789abcdef';
export const authToken = 'voice-auth-token-for-tests';
export const smppSystemId = 'countersign';
export const smppPassword = 'smpp-pass';
export const paymentId = '0000018f2b6c7d8e9fa0b1c2d3e4f5a6';

// ----------------------------------------------------------------------------- fake authz

/** A canned ConfirmPayment answer: OK with a payment state, or an error status (ErrorInfo attempts_left when given). */
export type CannedAnswer = { state: PaymentState } | { code: grpc.status; attemptsLeft?: number; delayMs?: number };

export interface FakeAuthz {
  address: string;
  /** Every ConfirmPayment received, in order (the proofs are the tests' own fake secrets). */
  requests: ConfirmPaymentRequest[];
  /** The authorization header of each request. */
  authorizations: string[];
  /** Answers, consumed in order; when empty, OK SUCCEEDED. */
  answers: CannedAnswer[];
  /** Resolves once `count` ConfirmPayment requests have been received. */
  waitForRequests(count: number): Promise<void>;
  close(): Promise<void>;
}

/** A real grpc-js server implementing PayerService/ConfirmPayment with canned answers. */
export async function startFakeAuthz(): Promise<FakeAuthz> {
  const server = new grpc.Server();
  const changes = new Changes();
  const fake: Omit<FakeAuthz, 'address' | 'close' | 'waitForRequests'> = { requests: [], authorizations: [], answers: [] };
  const unimplemented = (_: unknown, callback: grpc.sendUnaryData<Message>) => callback({ code: grpc.status.UNIMPLEMENTED });
  server.addService(grpcServiceDefinition(PayerService), {
    declinePayment: unimplemented,
    listPendingPayments: unimplemented,
    getChallenge: unimplemented,
    watchPendingPayments: (call: grpc.ServerWritableStream<Message, Message>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
    confirmPayment: (call: grpc.ServerUnaryCall<ConfirmPaymentRequest, Message>, callback: grpc.sendUnaryData<Message>) => {
      fake.requests.push(call.request);
      fake.authorizations.push(String(call.metadata.get('authorization')[0] ?? ''));
      changes.notify();
      const answer = fake.answers.shift() ?? { state: PaymentState.SUCCEEDED };
      if ('state' in answer) {
        callback(null, create(ConfirmPaymentResponseSchema, { payment: create(PaymentSchema, { id: call.request.paymentId, state: answer.state }) }));
        return;
      }
      const metadata = new grpc.Metadata();
      if (answer.attemptsLeft !== undefined) {
        const info = { reason: 'WRONG_PROOF', domain: 'countersign.v1', metadata: { attempts_left: String(answer.attemptsLeft) } };
        const details = grpcStatusDetailsBin(new ConnectError('wrong password', answer.code as number, undefined, [{ desc: ErrorInfoSchema, value: info }]));
        metadata.set('grpc-status-details-bin', Buffer.from(details!));
      }
      setTimeout(() => callback({ code: answer.code, details: 'canned', metadata }), answer.delayMs ?? 0);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return {
    ...fake,
    address: `127.0.0.1:${port}`,
    waitForRequests: (count) =>
      changes.until(
        () => fake.requests.length >= count,
        `${count} ConfirmPayment requests at authz`,
        () => `got ${fake.requests.length}`,
      ),
    close: () => new Promise((resolve) => server.tryShutdown(() => resolve())),
  } as FakeAuthz;
}

// ----------------------------------------------------------------------------- bridge client

export interface BridgeClient {
  sendSms(request: Partial<SendSmsRequest>): Promise<{ messageId: string }>;
  startCall(request: Partial<StartCallRequest>): Promise<{ callId: string }>;
  /** Opens StreamEvents and collects what arrives. */
  streamEvents(request: Partial<StreamEventsRequest>): EventCollector;
  close(): void;
}

export interface EventCollector {
  events: StreamEventsResponse[];
  /** Resolves with the first collected event matching (waiting for arrivals), rejects on a stream error or after `waitMs`. */
  waitFor(predicate: (e: StreamEventsResponse) => boolean, what: string): Promise<StreamEventsResponse>;
  /** Resolves with the collected events matching once there are `count` of them. */
  waitForCount(predicate: (e: StreamEventsResponse) => boolean, count: number, what: string): Promise<StreamEventsResponse[]>;
  cancel(): void;
}

type Unary = (
  request: Message,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, value?: unknown) => void,
) => void;

/** A grpc-js client of the bridge; `key` null sends no authorization header. */
export function bridgeClient(port: number, key: string | null = bridgeKey): BridgeClient {
  const Client = grpc.makeGenericClientConstructor(grpcServiceDefinition(TelcoBridgeService), TelcoBridgeService.name);
  const raw = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client &
    Record<'sendSms' | 'startCall', Unary> & {
      streamEvents(request: Message, metadata: grpc.Metadata): grpc.ClientReadableStream<StreamEventsResponse>;
    };
  const metadata = () => {
    const md = new grpc.Metadata();
    if (key !== null) md.set('authorization', `Bearer ${key}`);
    return md;
  };
  const unary = <T>(fn: Unary, schemaInput: Message) =>
    new Promise<T>((resolve, reject) =>
      fn.call(raw, schemaInput, metadata(), { deadline: Date.now() + waitMs }, (error, value) => (error ? reject(error) : resolve(value as T))),
    );
  const method = (name: string) => TelcoBridgeService.methods.find((m) => m.localName === name)!;
  return {
    sendSms: (request) => unary(raw.sendSms, create(method('sendSms').input, request as never)),
    startCall: (request) => unary(raw.startCall, create(method('startCall').input, request as never)),
    streamEvents: (request) => {
      const call = raw.streamEvents(create(method('streamEvents').input, request as never), metadata());
      const events: StreamEventsResponse[] = [];
      const changes = new Changes();
      let failure: Error | undefined;
      call.on('data', (e: StreamEventsResponse) => {
        events.push(e);
        changes.notify();
      });
      call.on('error', (error: grpc.ServiceError) => {
        if (error.code !== grpc.status.CANCELLED) failure = error;
        changes.notify();
      });
      const waitForCount = async (predicate: (e: StreamEventsResponse) => boolean, count: number, what: string) => {
        const matching = () => events.filter(predicate);
        const arrived = () => {
          if (matching().length >= count) return true;
          if (failure !== undefined) throw failure;
          return false;
        };
        await changes.until(arrived, `event ${what}`, () => `got ${events.map((e) => e.event.case).join(', ') || 'none'}`);
        return matching();
      };
      return {
        events,
        waitFor: async (predicate, what) => (await waitForCount(predicate, 1, what))[0]!,
        waitForCount,
        cancel: () => call.cancel(),
      };
    },
    close: () => raw.close(),
  };
}

// ----------------------------------------------------------------------------- the whole rig

export interface Rig {
  bridge: TelcoBridge;
  client: BridgeClient;
  smsc: Smsc;
  voice: VoiceProvider;
  authz: FakeAuthz;
  /** Every log line the bridge wrote. */
  logs: string[];
  /** Resolves once the bridge has logged `count` lines with message `msg`. */
  waitForLog(msg: string, count?: number): Promise<void>;
  /** Resolves once `condition()` holds, re-checked whenever a counter of the bridge's SMPP stats or the SMSC's stats changes. */
  until(condition: () => boolean, what: string): Promise<void>;
  phone(number: string): Handset;
  close(): Promise<void>;
}

export interface RigOptions {
  limits?: Partial<BridgeLimits>;
  smpp?: Partial<SmppChannelOptions>;
  smsc?: Partial<SmscOptions>;
  /** The simulated provider answers calls after this delay, ms. */
  answerDelayMs?: number;
  /** The auth token the bridge is configured with (default: the provider's). */
  bridgeAuthToken?: string;
  /** The bridge's clock (startTelcoBridge `now`); default Date.now. */
  now?: () => number;
}

export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const logs: string[] = [];
  const changes = new Changes();
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        logs.push(chunk.toString('utf8'));
        changes.notify();
        done();
      },
    }),
  );
  const smsc = await startSmsc({ systemId: smppSystemId, password: smppPassword, ...options.smsc });
  const voice = await startVoiceProvider({ accountSid, authToken, answerDelayMs: options.answerDelayMs ?? 0 });
  const authz = await startFakeAuthz();
  const bridge = await startTelcoBridge({
    host: '127.0.0.1',
    grpcPort: 0,
    webhookPort: 0,
    serviceKey: bridgeKey,
    sms: {
      kind: 'smpp',
      host: '127.0.0.1',
      port: smsc.port,
      systemId: smppSystemId,
      password: smppPassword,
      sourceAddr: 'Countersign',
      windowMax: 10,
      ratePerSecondMax: 100,
      reconnectDelayMsMin: 50,
      reconnectDelayMsMax: 400,
      ...options.smpp,
    },
    voice: { kind: 'twilio', baseUrl: voice.baseUrl, accountSid, authToken: options.bridgeAuthToken ?? authToken, from: '+15005550006' },
    authz: { address: authz.address, serviceKey: authzKeyOfBridge },
    logger,
    limits: { smsPerDestinationMax: 20, ...options.limits },
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  if (!(await bridge.whenSmsReady(waitMs))) throw new Error('the bridge did not bind to the SMSC');
  watchCounters(smsc.stats, changes);
  if (bridge.smppStats !== undefined) watchCounters(bridge.smppStats, changes);
  const client = bridgeClient(bridge.grpcPort);
  const logged = (msg: string) => logs.filter((line) => (JSON.parse(line) as { msg?: string }).msg === msg).length;
  return {
    bridge,
    client,
    smsc,
    voice,
    authz,
    logs,
    waitForLog: (msg, count = 1) =>
      changes.until(
        () => logged(msg) >= count,
        `${count} log lines "${msg}"`,
        () => `got ${logged(msg)}`,
      ),
    until: (condition, what) => changes.until(condition, what),
    phone: (number) => new Handset(number, smsc, voice),
    close: async () => {
      client.close();
      await bridge.close();
      await Promise.all([smsc.close(), voice.close(), authz.close()]);
    },
  };
}

/** Log lines containing `secret` (codes, digits, passwords must never be logged). */
export function linesWith(logs: string[], secret: string): string[] {
  return logs.filter((line) => line.includes(secret));
}

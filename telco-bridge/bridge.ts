import type { ServiceImpl } from '@connectrpc/connect';
import type { Logger } from 'pino';
import type { TelcoBridgeService } from '../gen/countersign/v1/telco_pb.js';
import type { AuthzClient } from './authz-client.js';
import type { SmsChannel, VoiceChannel } from './channels.js';
import { ConsoleChannel } from './console-channel.js';
import { EventLog } from './events.js';
import { type IvrLimits, ivrLimitsDefault } from './ivr-dialogue.js';
import { type ServiceLimits, serviceLimitsDefault, TelcoBridgeCore } from './service.js';
import { SmppChannel, type SmppChannelOptions, type SmppStats } from './smpp-channel.js';
import { TwilioVoiceChannel, type TwilioVoiceOptions, type VoiceLimits, voiceLimitsDefault } from './voice-channel.js';
import { startWebhookServer, type WebhookServer, webhookLimitsDefault } from './webhook-server.js';

/**
 * The telco bridge without its RPC: SMS over SMPP or the console, calls through a TwiML provider
 * or the console, the voice provider's webhooks over HTTP, and the TelcoBridgeService handlers.
 * services/telco.ts makes it a process: it hosts the handlers on the one RPC runtime (service
 * key, error table) and gives it the gRPC client to authz. Imports only gen/ and packages.
 */

export interface BridgeLimits extends ServiceLimits, VoiceLimits, IvrLimits {
  /** eventsMax: events kept for StreamEvents replay, at most. */
  eventsMax: number;
  /** Each ConfirmPayment to authz waits at most this long (the provider waits for our TwiML); services/ applies it. */
  authzDeadlineMs: number;
  /** webhookBodyBytesMax: larger webhook bodies are 413. */
  webhookBodyBytesMax: number;
  /** A webhook request must arrive completely within this. */
  webhookRequestTimeoutMs: number;
  /** On close, gRPC calls get this long to finish (services/ hosts them). */
  grpcShutdownGraceMs: number;
  /** A console gather waits this long for a typed line. */
  consoleInputTimeoutMs: number;
}

export const bridgeLimitsDefault: BridgeLimits = {
  ...serviceLimitsDefault,
  ...voiceLimitsDefault,
  ...ivrLimitsDefault,
  eventsMax: 50_000,
  authzDeadlineMs: 5_000,
  webhookBodyBytesMax: webhookLimitsDefault.bodyBytesMax,
  webhookRequestTimeoutMs: webhookLimitsDefault.requestTimeoutMs,
  grpcShutdownGraceMs: 2_000,
  consoleInputTimeoutMs: 120_000,
};

export type SmsOptions = ({ kind: 'smpp' } & SmppChannelOptions) | { kind: 'console' };
export type VoiceOptions = ({ kind: 'twilio' } & TwilioVoiceOptions) | { kind: 'console' };

export interface BridgeChannelsOptions {
  /** Interface of the webhook server, e.g. 127.0.0.1. */
  host: string;
  /** 0 picks a free port. */
  webhookPort: number;
  /** What the voice provider calls; default http://{host}:{webhookPort}. Signatures are checked against it. */
  publicWebhookBaseUrl?: string;
  sms: SmsOptions;
  voice: VoiceOptions;
  /** Where relayed proofs go (services/telco-authz-client.ts); closed with the bridge. */
  authz: AuthzClient;
  logger: Logger;
  /** The console channel's streams (default: stdout, no input). */
  console?: { output?: NodeJS.WritableStream; input?: NodeJS.ReadableStream };
  limits: BridgeLimits;
  /**
   * The clock of the bridge's windows (SMS reply window, per-destination rates, idempotency
   * TTLs, event ids, the SMPP send rate), epoch milliseconds; default Date.now. Tests pass one
   * they advance.
   */
  now?: () => number;
}

export interface BridgeChannels {
  /** The TelcoBridgeService handlers, for the RPC runtime to host. */
  serviceImpl: ServiceImpl<typeof TelcoBridgeService>;
  webhookPort: number;
  /** The public base URL the provider is given (resolved once the webhook server listens). */
  webhookBaseUrl: string;
  /** Resolves true once SMS can be sent (SMPP bound; console at once), false after `timeoutMs`. */
  whenSmsReady(timeoutMs: number): Promise<boolean>;
  /** SMPP counters (undefined on the console channel). */
  smppStats: SmppStats | undefined;
  /** Closes the webhook server, the channels and the authz client, in that order. */
  close(): Promise<void>;
}

export async function startBridgeChannels(options: BridgeChannelsOptions): Promise<BridgeChannels> {
  const { limits, logger, authz } = options;
  const now = options.now ?? Date.now;
  const events = new EventLog(limits.eventsMax, now);
  const core = new TelcoBridgeCore(events, authz, limits, logger, now);

  let webhookBaseUrl = options.publicWebhookBaseUrl ?? '';
  let consoleChannel: ConsoleChannel | undefined;
  const consoleOf = () =>
    (consoleChannel ??= new ConsoleChannel(
      {
        output: options.console?.output ?? process.stdout,
        ...(options.console?.input ? { input: options.console.input } : {}),
        inputTimeoutMs: limits.consoleInputTimeoutMs,
      },
      core.smsListener,
      core.voiceListener,
      core.confirmPassword,
      limits,
    ));
  const smpp = options.sms.kind === 'smpp' ? new SmppChannel(options.sms, core.smsListener, logger.child({ channel: 'smpp' }), now) : undefined;
  const sms: SmsChannel = smpp ?? consoleOf();
  const twilio =
    options.voice.kind === 'twilio'
      ? new TwilioVoiceChannel(
          options.voice,
          limits,
          limits,
          () => webhookBaseUrl,
          core.voiceListener,
          core.confirmPassword,
          logger.child({ channel: 'voice' }),
        )
      : undefined;
  const voice: VoiceChannel = twilio ?? consoleOf();
  core.attach(sms, voice);

  const started: { close(): Promise<void> }[] = [];
  const closeAll = async () => {
    for (const s of started.reverse()) await s.close().catch((error: unknown) => logger.warn({ err: error }, 'telco bridge close step failed'));
  };
  started.push({ close: async () => authz.close() });
  for (const channel of [smpp, twilio, consoleChannel]) if (channel !== undefined) started.push(channel);
  try {
    const webhooks: WebhookServer = await startWebhookServer({
      host: options.host,
      port: options.webhookPort,
      publicBaseUrl: () => webhookBaseUrl,
      authToken: options.voice.kind === 'twilio' ? options.voice.authToken : undefined,
      handler: twilio === undefined ? undefined : (request) => twilio.handle(request),
      limits: { bodyBytesMax: limits.webhookBodyBytesMax, requestTimeoutMs: limits.webhookRequestTimeoutMs },
      logger,
    });
    started.push(webhooks);
    if (webhookBaseUrl === '') webhookBaseUrl = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${webhooks.port}`;
    return {
      serviceImpl: core.serviceImpl(),
      webhookPort: webhooks.port,
      webhookBaseUrl,
      whenSmsReady: (timeoutMs) => (smpp === undefined ? Promise.resolve(true) : smpp.whenBound(timeoutMs)),
      smppStats: smpp?.stats,
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

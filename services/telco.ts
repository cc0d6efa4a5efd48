import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { TelcoBridgeService } from '../gen/countersign/v1/telco_pb.js';
import {
  type BridgeChannels,
  type BridgeChannelsOptions,
  type BridgeLimits,
  bridgeLimitsDefault,
  type SmsOptions,
  startBridgeChannels,
  type VoiceOptions,
} from '../telco-bridge/bridge.js';
import type { Config } from './config.js';
import { ConfigError } from './config-error.js';
import { grpcServerCredentials, type RunningServer, startGrpcServer } from './rpc/grpc-host.js';
import { authenticate, type Principal } from './rpc/interceptors.js';
import { createTelcoAuthzClient } from './telco-authz-client.js';

/**
 * The telco bridge as countersign runs it: `countersign telco-bridge` (its own process) and
 * `countersign serve --with-bridge` (in process). telco-bridge/ owns the channels and the
 * TelcoBridgeService handlers; this file makes them a process: the handlers on the one RPC
 * runtime (services/rpc/: grpc-js, the house error table maps the bridge's TelcoError, health,
 * reflection) behind the key the bridge shares with authz, and the gRPC client to authz for the
 * proofs it relays. Its settings come from the configuration (services/config.ts, Config.telco
 * and Config.telcoKey); without SMPP or voice settings the bridge uses the console channel for
 * that medium.
 */
export interface TelcoSettings {
  host: string;
  grpcPort: number;
  webhookPort: number;
  publicWebhookBaseUrl: string | undefined;
  sms: SmsOptions;
  voice: VoiceOptions;
  key: string;
}

/** The bridge's settings from the configuration; the bridge needs the key it shares with authz. */
export function telcoSettings(config: Pick<Config, 'host' | 'telco' | 'telcoKey'>): TelcoSettings {
  if (config.telcoKey === undefined) throw new ConfigError('the telco bridge needs COUNTERSIGN_TELCO_KEY (shared with authz): set it in both');
  const { grpcPort, webhookPort, publicWebhookBaseUrl, sms, voice } = config.telco;
  return { host: config.host, grpcPort, webhookPort, publicWebhookBaseUrl, sms, voice, key: config.telcoKey };
}

/** Starts the bridge, relaying proofs to authz at `authzAddress`. */
export function startBridge(settings: TelcoSettings, authzAddress: string, logger: Logger): Promise<TelcoBridge> {
  return startTelcoBridge({
    host: settings.host,
    grpcPort: settings.grpcPort,
    webhookPort: settings.webhookPort,
    ...(settings.publicWebhookBaseUrl === undefined ? {} : { publicWebhookBaseUrl: settings.publicWebhookBaseUrl }),
    serviceKey: settings.key,
    sms: settings.sms,
    voice: settings.voice,
    authz: { address: authzAddress, serviceKey: settings.key },
    logger: logger.child({ component: 'telco-bridge' }),
  });
}

export interface TelcoBridgeOptions extends Omit<BridgeChannelsOptions, 'authz' | 'limits'> {
  /** Interface of both servers (gRPC and webhooks), e.g. 127.0.0.1. */
  host: string;
  /** 0 picks a free port. */
  grpcPort: number;
  /** SECRET: what authz must present (`authorization: Bearer <key>` or `x-api-key`). */
  serviceKey: string;
  authz: {
    /** host:port of authz's gRPC server. */
    address: string;
    /** SECRET: the bridge's key at authz. */
    serviceKey: string;
  };
  /** Overrides of the named bounds. */
  limits?: Partial<BridgeLimits>;
}

export interface TelcoBridge extends Omit<BridgeChannels, 'serviceImpl'> {
  grpcPort: number;
}

/** The bridge process: its channels and webhooks, TelcoBridgeService on gRPC, its client to authz. */
export async function startTelcoBridge(options: TelcoBridgeOptions): Promise<TelcoBridge> {
  const limits: BridgeLimits = { ...bridgeLimitsDefault, ...options.limits };
  const logger = options.logger.child({ component: 'telco-bridge' });
  const authz = createTelcoAuthzClient({ address: options.authz.address, serviceKey: options.authz.serviceKey, deadlineMs: limits.authzDeadlineMs });
  const channels = await startBridgeChannels({
    host: options.host,
    webhookPort: options.webhookPort,
    ...(options.publicWebhookBaseUrl === undefined ? {} : { publicWebhookBaseUrl: options.publicWebhookBaseUrl }),
    sms: options.sms,
    voice: options.voice,
    authz,
    logger,
    ...(options.console === undefined ? {} : { console: options.console }),
    limits,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  let grpc: RunningServer;
  try {
    grpc = await startGrpcServer({
      host: options.host,
      port: options.grpcPort,
      services: [{ service: TelcoBridgeService, impl: channels.serviceImpl }],
      interceptors: [authenticate(authzCaller(options.serviceKey), { publicMethods: [] })],
      credentials: grpcServerCredentials(undefined),
      logger,
      shutdownGraceMs: limits.grpcShutdownGraceMs,
    });
  } catch (error) {
    await channels.close();
    throw error;
  }
  logger.info({ grpcPort: grpc.port, webhookPort: channels.webhookPort, sms: options.sms.kind, voice: options.voice.kind }, 'telco bridge listening');
  const { serviceImpl: _, ...bridge } = channels;
  return {
    ...bridge,
    grpcPort: grpc.port,
    close: async () => {
      await grpc.close();
      await channels.close();
    },
  };
}

const authzPrincipal: Principal = { kind: 'service', id: 'authz' };
const sha256 = (value: string) => createHash('sha256').update(value).digest();

/** The bridge's one caller: whoever presents the key it shares with authz (compared in constant time). */
function authzCaller(serviceKey: string): (apiKey: string) => Promise<Principal | undefined> {
  const expected = sha256(serviceKey);
  return async (apiKey) => (timingSafeEqual(sha256(apiKey), expected) ? authzPrincipal : undefined);
}

export { freePort } from './net.js';

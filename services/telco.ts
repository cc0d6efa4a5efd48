import type { Logger } from 'pino';
import { startTelcoBridge, type SmsOptions, type TelcoBridge, type VoiceOptions } from '../telco-bridge/bridge.js';
import { ConfigError } from './config.js';

/**
 * The telco bridge's configuration from the environment, for `countersign telco-bridge` (its own
 * process) and `countersign serve` with the bridge in process. Without SMPP or voice settings
 * the bridge uses the console channel for that medium.
 *
 *   COUNTERSIGN_SMPP          smpp://SYSTEM_ID:PASSWORD@HOST:PORT?source=SENDER  (SMS over SMPP 3.4)
 *   COUNTERSIGN_VOICE         https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001000  (TwiML provider)
 *   COUNTERSIGN_TELCO_PORT    the bridge's gRPC port (default 50061)
 *   COUNTERSIGN_WEBHOOK_PORT  the voice webhooks' HTTP port (default 8081)
 *   COUNTERSIGN_PUBLIC_WEBHOOK_URL  what the provider calls (default http://HOST:WEBHOOK_PORT)
 *   COUNTERSIGN_TELCO_KEY     the key authz and the bridge present to each other (required)
 *   COUNTERSIGN_AUTHZ_ADDRESS authz's gRPC host:port (the bridge relays proofs to it)
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

/** SMPP window (unanswered submit_sm) and rate when the URL does not say. */
const smppWindowMaxDefault = 10;
const smsPerSecondMaxDefault = 50;

function smppFrom(url: string | undefined): SmsOptions {
  if (url === undefined || url === '') return { kind: 'console' };
  const u = new URL(url);
  if (u.protocol !== 'smpp:') throw new ConfigError('COUNTERSIGN_SMPP must look like smpp://SYSTEM_ID:PASSWORD@HOST:PORT?source=SENDER');
  return {
    kind: 'smpp',
    host: u.hostname,
    port: Number(u.port || 2775),
    systemId: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    sourceAddr: u.searchParams.get('source') ?? 'countersign',
    windowMax: Number(u.searchParams.get('window') ?? smppWindowMaxDefault),
    ratePerSecondMax: Number(u.searchParams.get('rate') ?? smsPerSecondMaxDefault),
  };
}

function voiceFrom(url: string | undefined): VoiceOptions {
  if (url === undefined || url === '') return { kind: 'console' };
  const u = new URL(url);
  const from = u.searchParams.get('from');
  if (from === null || u.username === '' || u.password === '') throw new ConfigError('COUNTERSIGN_VOICE must look like https://ACCOUNT_SID:AUTH_TOKEN@api.twilio.com?from=+15550001000');
  return { kind: 'twilio', baseUrl: `${u.protocol}//${u.host}`, accountSid: decodeURIComponent(u.username), authToken: decodeURIComponent(u.password), from };
}

export function telcoSettings(env: NodeJS.ProcessEnv, host: string): TelcoSettings {
  const key = env.COUNTERSIGN_TELCO_KEY;
  if (key === undefined || key === '') throw new ConfigError('the telco bridge needs COUNTERSIGN_TELCO_KEY (shared with authz)');
  return {
    host,
    grpcPort: Number(env.COUNTERSIGN_TELCO_PORT || 50061),
    webhookPort: Number(env.COUNTERSIGN_WEBHOOK_PORT || 8081),
    publicWebhookBaseUrl: env.COUNTERSIGN_PUBLIC_WEBHOOK_URL || undefined,
    sms: smppFrom(env.COUNTERSIGN_SMPP),
    voice: voiceFrom(env.COUNTERSIGN_VOICE),
    key,
  };
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

export { freePort } from './net.js';

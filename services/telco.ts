import type { Logger } from 'pino';
import { startTelcoBridge, type SmsOptions, type TelcoBridge, type VoiceOptions } from '../telco-bridge/bridge.js';
import { ConfigError } from './config-error.js';
import type { Config } from './config.js';

/**
 * The telco bridge as countersign runs it: `countersign telco-bridge` (its own process) and
 * `countersign serve --with-bridge` (in process). Its settings come from the configuration
 * (services/config.ts, Config.telco and Config.telcoKey); without SMPP or voice settings the
 * bridge uses the console channel for that medium.
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

export { freePort } from './net.js';

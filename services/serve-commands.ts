import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { pino } from 'pino';
import { reconcile } from '../authz/reconcile.js';
import { createApp, prepareKeys } from './app.js';
import { announceUntilStopSignal, parseFlags, portInUse, UsageError, untilStopSignal } from './cli-errors.js';
import { type Config, ConfigError } from './config.js';
import { runDemo } from './demo.js';
import { openLedger } from './ledger.js';
import { runLedgerDemo } from './ledger-demo.js';
import { youngGenerationOf } from './runtime-flags.js';
import { startServers } from './server.js';
import { freePort, startBridge, type TelcoSettings, telcoSettings } from './telco.js';
import { isWorker, joinPrimary, parseWorkers, startPrimary, workersRefusal } from './workers.js';

/**
 * The commands that run countersign's own processes and stores — serve (and its workers),
 * telco-bridge, demo, reconcile, ledger-demo — loaded by the CLI (services/cli.ts) only when one
 * of them runs, so that help, usage errors and the client commands start without the server's
 * code. Each takes `configured`, the CLI's configuration loader (it keeps what it loaded for its
 * error messages).
 */

/** `countersign demo`. */
export async function demo(args: string[], configured: () => Config): Promise<void> {
  parseFlags('demo', args, {});
  await runDemo(configured(), (line) => console.log(line));
}

export async function serve(args: string[], configured: () => Config): Promise<void> {
  const values = parseFlags('serve', args, { 'with-bridge': { type: 'boolean', default: false }, workers: { type: 'string' } });
  const workers = workersFlag(values.workers);
  const config = configured();
  if (workers > 1 || isWorker()) {
    const refusal = workersRefusal(config, values['with-bridge']);
    if (refusal !== undefined) throw new ConfigError(refusal);
    if (!isWorker()) return servePrimary(config, workers);
  }
  const withBridge = values['with-bridge'] ? await bridgeSettings(config) : undefined;
  const app = await createApp({ config: withBridge?.config ?? config });
  const ports = [
    { label: 'gRPC', setting: 'COUNTERSIGN_GRPC_PORT', port: config.grpcPort, grpcJs: true },
    { label: 'payer web terminal', setting: 'COUNTERSIGN_WEB_PORT', port: config.webPort, grpcJs: false },
    { label: 'Connect/gRPC-Web', setting: 'COUNTERSIGN_CONNECT_PORT', port: config.connectPort, grpcJs: false },
    ...(withBridge === undefined ? [] : bridgePorts(withBridge.settings)),
  ];
  const servers = await startServers(app, {
    host: config.host,
    grpcPort: config.grpcPort,
    connectPort: config.connectPort,
    webPort: config.webPort,
    webPortRequired: config.webPortRequired || isWorker(),
    tls: config.tls ?? null,
  }).catch((error: unknown) => Promise.reject(portError(error, config.host, ports)));
  const bridge =
    withBridge === undefined
      ? undefined
      : await startBridge(withBridge.settings, `${config.host}:${servers.grpcPort}`, app.logger).catch((error: unknown) =>
          Promise.reject(portError(error, config.host, ports)),
        );
  app.logger.info({ grpcPort: servers.grpcPort, connectPort: servers.connectPort, stores: app.describe, worker: isWorker() }, 'countersign serving');
  const stop = async () => {
    await bridge?.close();
    await servers.close();
    await app.close();
  };
  // The handlers go in before the banner: whoever reads it may signal at once (a test, a supervisor).
  const stopSignal = untilStopSignal();
  if (isWorker()) {
    joinPrimary(app.events, { grpcPort: servers.grpcPort, connectPort: servers.connectPort, webUrl: servers.webUrl }, stop);
  } else {
    console.log(
      banner(withBridge?.config ?? config, { grpcPort: servers.grpcPort, connectPort: servers.connectPort, webUrl: servers.webUrl }, app.describe, bridge),
    );
  }
  await stopSignal;
  await stop();
}

/** `--workers N`: a bad N is a usage error (exit 2), not a configuration one. */
function workersFlag(text: string | undefined): number {
  try {
    return parseWorkers(text);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError('serve', error.message);
    throw error;
  }
}

interface PortSetting {
  label: string;
  /** The variable or flag that moves it. */
  setting: string;
  port: number;
  /** Bound by grpc-js (its own error) rather than node:net. */
  grpcJs: boolean;
}

function bridgePorts(settings: TelcoSettings): PortSetting[] {
  return [
    { label: 'telco bridge gRPC', setting: 'COUNTERSIGN_TELCO_PORT', port: settings.grpcPort, grpcJs: true },
    { label: 'telco bridge webhook', setting: 'COUNTERSIGN_WEBHOOK_PORT', port: settings.webhookPort, grpcJs: false },
  ];
}

/** A busy port as a one-line ConfigError naming the setting that moves it; any other error as it is. */
function portError(error: unknown, host: string, ports: readonly PortSetting[]): unknown {
  const busy = portInUse(error);
  if (busy === undefined) return error;
  const which = ports.find((p) => p.port === busy.port && p.grpcJs === busy.grpcJs) ?? ports.find((p) => p.port === busy.port);
  const where = `${host}:${busy.port}`;
  if (which === undefined) return new ConfigError(`port ${where} is in use by another process`, { cause: error });
  return new ConfigError(`${which.label} port ${where} is in use by another process: set ${which.setting} to a free port (0 picks one)`, { cause: error });
}

/** The bridge in this process: authz reaches it over loopback gRPC like a separate one, with COUNTERSIGN_TELCO_KEY or a key made for this run. */
async function bridgeSettings(config: Config): Promise<{ config: Config; settings: TelcoSettings }> {
  const telcoKey = config.telcoKey ?? `cs_telco_${randomBytes(24).toString('base64url')}`;
  let settings = telcoSettings({ ...config, telcoKey });
  if (settings.grpcPort === 0) settings = { ...settings, grpcPort: await freePort(config.host) };
  return { settings, config: { ...config, telcoBridge: `${config.host}:${settings.grpcPort}`, telcoKey: settings.key } };
}

function banner(
  config: Config,
  servers: { grpcPort: number; connectPort: number; webUrl: string | undefined },
  describe: string[],
  bridge: { grpcPort: number; webhookBaseUrl: string } | undefined,
  workers = 1,
): string {
  return `countersign serving${workers > 1 ? ` (${workers} worker processes)` : ''}
  gRPC (grpc-js)           ${config.host}:${servers.grpcPort}   health + reflection: grpcurl -plaintext ${config.host}:${servers.grpcPort} list
  Connect / gRPC-Web       http://${config.host}:${servers.connectPort}
  payer web terminal       ${servers.webUrl ?? `off: port ${config.webPort} is in use (set COUNTERSIGN_WEB_PORT)`}
  telco                    ${bridge !== undefined ? `bridge in process: gRPC ${config.host}:${bridge.grpcPort}, voice webhooks ${bridge.webhookBaseUrl}` : config.telcoBridge !== undefined ? `telco-bridge at ${config.telcoBridge}` : 'console (codes and calls printed here)'}
  ledger and stores        ${describe.join('; ')}
  young generation         ${youngGenerationOf(process.execArgv, process.env.NODE_OPTIONS)}
  operator key             ${config.adminKey === undefined ? join(config.dataDir, 'admin.key') : 'COUNTERSIGN_ADMIN_KEY'}
Ctrl-C stops.`;
}

/** `serve --workers N`: the primary forks the workers (services/workers.ts) and stays until a signal. */
async function servePrimary(config: Config, workers: number): Promise<void> {
  prepareKeys(config);
  const log = (line: string) => console.error(`countersign primary ${process.pid}: ${line}`);
  const primary = await startPrimary(config, workers, log);
  const { listening } = primary;
  await announceUntilStopSignal(
    banner(
      config,
      listening,
      [`TigerBeetle at ${config.tbAddresses.join(',')}`, config.redisUrl !== undefined ? 'Redis' : 'Redis Cluster'],
      undefined,
      workers,
    ),
  );
  await primary.stop();
}

/** `countersign telco-bridge`: the bridge as its own process. */
export async function telcoBridgeCommand(args: string[], configured: () => Config): Promise<void> {
  parseFlags('telco-bridge', args, {});
  const config = configured();
  const authz = config.authzAddress;
  if (authz === undefined) throw new ConfigError('telco-bridge needs COUNTERSIGN_AUTHZ_ADDRESS (authz gRPC host:port)');
  const settings = telcoSettings(config);
  const logger = pino({ level: config.logLevel, base: { service: 'countersign-telco-bridge' } });
  const bridge = await startBridge(settings, authz, logger).catch((error: unknown) => Promise.reject(portError(error, config.host, bridgePorts(settings))));
  await announceUntilStopSignal(`countersign telco-bridge
  gRPC (TelcoBridgeService)  ${config.host}:${bridge.grpcPort}
  voice webhooks             ${bridge.webhookBaseUrl}
  relays proofs to authz     ${authz}
Ctrl-C stops.`);
  await bridge.close();
}

export async function reconcileCommand(args: string[], configured: () => Config): Promise<void> {
  parseFlags('reconcile', args, {});
  const app = await createApp({ config: configured() });
  try {
    const report = await reconcile(app.payments.deps);
    console.log(JSON.stringify(report, null, 2));
  } finally {
    await app.close();
  }
}

export async function ledgerDemo(args: string[], configured: () => Config): Promise<void> {
  const values = parseFlags('ledger-demo', args, { memory: { type: 'boolean', default: false } });
  const { ledger, describe } = await openLedger(configured(), { memory: values.memory });
  console.log(`countersign ledger demo on ${describe}`);
  try {
    await runLedgerDemo(ledger, (line) => console.log(line));
  } finally {
    await ledger.close();
  }
}

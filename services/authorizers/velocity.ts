import type { ServiceImpl } from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import { type Logger, pino } from 'pino';
import type { AuthorizationContext, Authorizer, Decision } from '../../authz/authorizer.js';
import { invalidArgument } from '../../authz/errors.js';
import type { Factor } from '../../authz/model.js';
import { AuthorizerService } from '../../gen/countersign/v1/authorizer_pb.js';
import { announceUntilStopSignal, type CommandHelp, parseFlags, UsageError } from '../cli-errors.js';
import { ConfigError, loadConfig } from '../config.js';
import { type RunningServer, startGrpcServer } from '../rpc/grpc-host.js';
import { factorNamed } from './settings.js';
import { fromDecideRequest, toDecideResponse } from './wire.js';

export interface VelocityOptions {
  /** More distinct payment requests than this per payer within the window → REQUIRE `factor`. */
  maxPerHour: number;
  factor: Factor;
  payersMax: number;
  now: () => number;
}

/** The sliding window, milliseconds. */
export const velocityWindowMs = 60 * 60 * 1000;
/** Payers remembered at most; the least recently seen is forgotten first. */
export const velocityPayersMax = 100_000;
/** Largest --max-per-hour accepted (each payer keeps at most that many + 1 request ids). */
export const velocityMaxPerHourMax = 10_000;

/**
 * The example plugin's rule, as a domain Authorizer: more than `maxPerHour` payment requests by
 * one payer within a sliding hour require `factor`; fewer are allowed. A request is counted once
 * by its `request_id` attribute (merchant + idempotency key), so retries are not counted twice,
 * and a retry gets the answer its request got (its rank in the window) while it stays there.
 */
export class VelocityRule implements Authorizer {
  readonly name = 'velocity';
  /** Per payer (least recently seen first): request id → first seen, oldest first; at most maxPerHour + 1 (more never change an answer). */
  private readonly payers = new Map<string, Map<string, number>>();
  private unnamed = 0;

  constructor(private readonly options: VelocityOptions) {}

  async decide(context: AuthorizationContext): Promise<Decision> {
    if (context.payerId === '') throw invalidArgument('payer_id', 'is required');
    const rank = this.rank(context.payerId, this.requestIdOf(context));
    const { maxPerHour, factor } = this.options;
    if (rank > maxPerHour) return { kind: 'REQUIRE', factors: [factor], reason: `more than ${maxPerHour} payment requests within an hour` };
    return { kind: 'ALLOW', reason: `payment request ${rank} of ${maxPerHour} allowed within an hour` };
  }

  /** Payers currently remembered (for tests and metrics). */
  get payersTracked(): number {
    return this.payers.size;
  }

  private requestIdOf(context: AuthorizationContext): string {
    const id = context.attributes?.request_id || context.paymentId;
    return id !== '' ? id : `unnamed:${++this.unnamed}`; // nothing to recognise a retry by: counted
  }

  /** The request's position among the payer's requests in the window (1 = oldest), recording it if new. */
  private rank(payerId: string, requestId: string): number {
    const requests = this.payers.get(payerId) ?? new Map<string, number>();
    this.payers.delete(payerId); // re-inserted last: the most recently seen
    this.payers.set(payerId, requests);
    if (this.payers.size > this.options.payersMax) this.payers.delete(this.payers.keys().next().value!);
    const windowStartMs = this.options.now() - velocityWindowMs;
    for (const [id, seenMs] of requests) {
      if (seenMs > windowStartMs) break;
      requests.delete(id);
    }
    let position = 0;
    for (const id of requests.keys()) {
      position += 1;
      if (id === requestId) return position;
    }
    if (requests.size > this.options.maxPerHour) requests.delete(requests.keys().next().value!);
    requests.set(requestId, this.options.now());
    return requests.size;
  }
}

/** AuthorizerService over a domain authorizer (the plugin side of the contract). */
export function authorizerServiceImpl(authorizer: Authorizer): ServiceImpl<typeof AuthorizerService> {
  return {
    async decide(request) {
      return toDecideResponse(await authorizer.decide(fromDecideRequest(request)));
    },
  };
}

export interface VelocityPluginOptions extends VelocityOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  logger: Pick<Logger, 'error'>;
}

/** Serves the velocity rule as an AuthorizerService on grpc-js, with health and reflection. */
export function startVelocityPlugin(options: VelocityPluginOptions): Promise<RunningServer> {
  return startGrpcServer({
    host: options.host,
    port: options.port,
    services: [{ service: AuthorizerService, impl: authorizerServiceImpl(new VelocityRule(options)) }],
    interceptors: [],
    credentials: grpc.ServerCredentials.createInsecure(),
    logger: options.logger,
  });
}

/** `--factor`: an unknown factor is a usage error (exit 2). */
function factorFlag(name: string): Factor {
  try {
    return factorNamed(name, '--factor');
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError('authorizer-velocity', error.message);
    throw error;
  }
}

function boundedInt(flag: string, text: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max)
    throw new UsageError('authorizer-velocity', `${flag} must be an integer ${min}..${max}, got "${text}"`);
  return Number(text);
}

export const authorizerVelocityHelp: CommandHelp = {
  name: 'authorizer-velocity',
  synopsis: '[--host 127.0.0.1] [--port N (0 = free)] [--max-per-hour N (5)] [--factor SECOND_CODE]',
  summary: [
    'an example authorizer plugin (gRPC AuthorizerService): more than N payment',
    'requests per payer within a sliding hour require the factor (COUNTERSIGN_AUTHORIZERS)',
  ],
  flags: [
    ['--host HOST', 'interface to listen on (default 127.0.0.1)'],
    ['--port N', 'port to listen on (default 0: a free one, printed)'],
    ['--max-per-hour N', `payment requests per payer per hour allowed without the factor, 1..${velocityMaxPerHourMax} (default 5)`],
    ['--factor FACTOR', 'the factor required above that (default SECOND_CODE)'],
  ],
};

/** `countersign authorizer-velocity [--host H] [--port N] [--max-per-hour N] [--factor F]`: runs until SIGINT or SIGTERM. */
export async function authorizerVelocityCommand(args: string[]): Promise<void> {
  const values = parseFlags('authorizer-velocity', args, {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'max-per-hour': { type: 'string', default: '5' },
    factor: { type: 'string', default: 'SECOND_CODE' },
  });
  const maxPerHour = boundedInt('--max-per-hour', values['max-per-hour'], 1, velocityMaxPerHourMax);
  const factor = factorFlag(values.factor);
  const logger = pino({ level: loadConfig().logLevel, base: { service: 'countersign-authorizer-velocity' } });
  const server = await startVelocityPlugin({
    host: values.host,
    port: boundedInt('--port', values.port, 0, 65_535),
    maxPerHour,
    factor,
    payersMax: velocityPayersMax,
    now: Date.now,
    logger,
  });
  await announceUntilStopSignal(
    `countersign authorizer-velocity listening on ${values.host}:${server.port} (REQUIRE ${factor} above ${maxPerHour} payment requests per payer per hour)`,
  );
  await server.close();
}

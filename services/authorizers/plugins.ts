import type { Logger } from 'pino';
import { type Authorizer, type ChainOptions, failClosed } from '../../authz/authorizer.js';
import { GrpcAuthorizer } from './grpc-authorizer.js';
import type { AuthorizerSettings } from './settings.js';

/** The configured plugins, ready for the chain after the built-in policy. */
export interface AuthorizerPlugins {
  /** In configuration order, each failing closed under `chainOptions` (its decide never throws). */
  readonly authorizers: Authorizer[];
  readonly chainOptions: ChainOptions;
  /** For the start-up banner; undefined without plugins. */
  readonly describe: string | undefined;
  close(): void;
}

export function openAuthorizerPlugins(settings: AuthorizerSettings, logger: Pick<Logger, 'warn'>): AuthorizerPlugins {
  const chainOptions: ChainOptions = { onFailure: settings.authorizerFailure, strongestFactors: settings.authorizerStrongestFactors };
  const plugins = settings.authorizers.map((e) => new GrpcAuthorizer({ name: e.name, address: e.address, deadlineMs: settings.authorizerDeadlineMs, logger }));
  const onFailure = settings.authorizerFailure === 'decline' ? 'decline' : `require ${settings.authorizerStrongestFactors.join(' + ')}`;
  return {
    authorizers: plugins.map((p) => failClosed(p, chainOptions)),
    chainOptions,
    describe:
      plugins.length === 0
        ? undefined
        : `authorizer plugins ${settings.authorizers.map((e) => `${e.name}=${e.address}`).join(', ')} (deadline ${settings.authorizerDeadlineMs} ms; on failure ${onFailure})`,
    close: () => plugins.forEach((p) => p.close()),
  };
}

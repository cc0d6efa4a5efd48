import type { AuthorizerFailureMode } from '../../authz/authorizer.js';
import type { Factor } from '../../authz/model.js';
import { Factor as ProtoFactor } from '../../gen/countersign/v1/common_pb.js';
import { ConfigError } from '../config-error.js';

/** One external authorizer plugin: a gRPC AuthorizerService endpoint. */
export interface AuthorizerEndpoint {
  /** Shown in decline reasons and logs; the address when the entry has no `name=`. */
  name: string;
  /** host:port, plaintext HTTP/2 (gRPC). */
  address: string;
}

/** The plugin part of the configuration (services/config.ts reads the variables; documented in its Config). */
export interface AuthorizerSettings {
  authorizers: AuthorizerEndpoint[];
  authorizerDeadlineMs: number;
  authorizerFailure: AuthorizerFailureMode;
  authorizerStrongestFactors: Factor[];
}

/** The plugin variables' text as the environment gives it (undefined: unset). */
export interface AuthorizerSettingsText {
  /** COUNTERSIGN_AUTHORIZERS */
  authorizers: string | undefined;
  /** COUNTERSIGN_AUTHORIZER_DEADLINE_MS */
  deadlineMs: string | undefined;
  /** COUNTERSIGN_AUTHORIZER_FAILURE */
  failure: string | undefined;
  /** COUNTERSIGN_AUTHORIZER_STRONGEST */
  strongest: string | undefined;
}

/** Default deadline of one plugin call, milliseconds (the contract's default). */
export const authorizerDeadlineMsDefault = 200;
/** Longest deadline accepted, milliseconds: a payment waits for every plugin in turn. */
export const authorizerDeadlineMsMax = 10_000;
/** Plugins in one chain, at most. */
export const authorizersMax = 16;

const namePattern = /^[A-Za-z0-9[][A-Za-z0-9._:[\]-]{0,63}$/;
const hostPattern = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/;

function endpoint(entry: string): AuthorizerEndpoint {
  const equals = entry.indexOf('=');
  const name = equals < 0 ? entry : entry.slice(0, equals).trim();
  const address = equals < 0 ? entry : entry.slice(equals + 1).trim();
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  if (colon <= 0 || !hostPattern.test(host) || !Number.isInteger(port) || port < 1 || port > 65_535 || !/^\d+$/.test(address.slice(colon + 1))) {
    throw new ConfigError(`COUNTERSIGN_AUTHORIZERS: "${entry}" is not [name=]host:port with a port 1..65535`);
  }
  if (!namePattern.test(name)) throw new ConfigError(`COUNTERSIGN_AUTHORIZERS: name "${name}" must be 1-64 letters, digits, '.', '_', ':' or '-'`);
  return { name, address };
}

function endpoints(text: string | undefined): AuthorizerEndpoint[] {
  const entries = (text ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  if (entries.length > authorizersMax) throw new ConfigError(`COUNTERSIGN_AUTHORIZERS: at most ${authorizersMax} plugins, got ${entries.length}`);
  const list = entries.map(endpoint);
  const names = new Set(list.map((e) => e.name));
  if (names.size !== list.length || names.has('built-in')) throw new ConfigError('COUNTERSIGN_AUTHORIZERS: plugin names must be unique and not "built-in"');
  return list;
}

function deadlineMs(text: string | undefined): number {
  if (text === undefined || text === '') return authorizerDeadlineMsDefault;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > authorizerDeadlineMsMax) {
    throw new ConfigError(`COUNTERSIGN_AUTHORIZER_DEADLINE_MS must be an integer 1..${authorizerDeadlineMsMax}, got "${text}"`);
  }
  return value;
}

function failureMode(text: string | undefined): AuthorizerFailureMode {
  const value = text === undefined || text === '' ? 'decline' : text;
  if (value !== 'decline' && value !== 'require-strongest')
    throw new ConfigError(`COUNTERSIGN_AUTHORIZER_FAILURE must be "decline" or "require-strongest", got "${text}"`);
  return value;
}

/** A factor by its proto name (SECOND_CODE, SMS_OTP, ...). */
export function factorNamed(name: string, setting: string): Factor {
  const value = (ProtoFactor as unknown as Record<string, unknown>)[name];
  if (typeof value !== 'number' || value === ProtoFactor.UNSPECIFIED) {
    const known = Object.keys(ProtoFactor).filter((k) => Number.isNaN(Number(k)) && k !== 'UNSPECIFIED');
    throw new ConfigError(`${setting}: unknown factor "${name}" (one of ${known.join(', ')})`);
  }
  return name as Factor;
}

function strongestFactors(text: string | undefined): Factor[] {
  const names = (text === undefined || text === '' ? 'SECOND_CODE' : text)
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
  if (names.length === 0) throw new ConfigError('COUNTERSIGN_AUTHORIZER_STRONGEST must name at least one factor');
  return [...new Set(names.map((n) => factorNamed(n, 'COUNTERSIGN_AUTHORIZER_STRONGEST')))];
}

/** The plugin settings from their variables' text (services/config.ts reads them); invalid values are a ConfigError at start-up. */
export function authorizerSettings(text: AuthorizerSettingsText): AuthorizerSettings {
  return {
    authorizers: endpoints(text.authorizers),
    authorizerDeadlineMs: deadlineMs(text.deadlineMs),
    authorizerFailure: failureMode(text.failure),
    authorizerStrongestFactors: strongestFactors(text.strongest),
  };
}

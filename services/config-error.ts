/**
 * A setting the operator can fix (a variable, a flag, a file it names): its message is one line
 * naming the setting and what to do, which the CLI prints as it is with exit 1
 * (services/cli-errors.ts). Its own file so that the parsers of every part of the configuration
 * (services/config.ts, services/authorizers/settings.ts) share it without importing each other.
 */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

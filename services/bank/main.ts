import { readFileSync, statSync } from 'node:fs';
import { pino } from 'pino';
import { announceUntilStopSignal, type CommandHelp, parseFlags, UsageError } from '../cli-errors.js';
import { ConfigError, loadConfig } from '../config.js';
import { startBankServer } from './bank-server.js';
import { type CardRecord, CardsFileError, cardsFileBytesMax, demoCards, parseCardsFile } from './cards.js';
import { BankFrontEnd } from './frontend.js';
import { generateX25519KeyPair } from './hpke.js';
import { KeyFileError, loadOrCreateKeyFile } from './key-file.js';

/**
 * `countersign bank-frontend [--host 127.0.0.1] [--port N] [--cards FILE.json] [--key-file FILE]`:
 * the reference bank front-end as its own process. Prints one ready line on stdout
 * ("... listening on HOST:PORT ..."), logs JSON lines (pino) to stdout, stops on SIGTERM/SIGINT.
 */

export const bankPortDefault = 50071;
export const bankHostDefault = '127.0.0.1';

export const bankFrontEndHelp: CommandHelp = {
  name: 'bank-frontend',
  synopsis: '[--host 127.0.0.1] [--port N (0 = free)] [--cards FILE.json] [--key-file FILE]',
  summary: ['the reference bank front-end (M5 card + PIN decisions, gRPC BankFrontEndService);', 'without --cards a demo card table (services/bank/README.md)'],
  flags: [
    ['--host HOST', `interface to listen on (default ${bankHostDefault})`],
    ['--port N', `port to listen on, 0 picks a free one (default ${bankPortDefault})`],
    ['--cards FILE.json', 'the card table (services/bank/README.md); default: the demo table'],
    ['--key-file FILE', "the bank's X25519 key, created (mode 0600) if missing; default: a fresh key"],
  ],
};

export async function runBankFrontEnd(args: string[]): Promise<void> {
  const values = parseFlags('bank-frontend', args, {
    host: { type: 'string', default: bankHostDefault },
    port: { type: 'string', default: String(bankPortDefault) },
    cards: { type: 'string' },
    'key-file': { type: 'string' },
  });
  const port = Number(values.port);
  if (!/^[0-9]{1,5}$/.test(values.port) || port > 65_535) throw new UsageError('bank-frontend', `--port must be 0..65535, got "${values.port}"`);
  const logger = pino({ level: loadConfig().logLevel, base: { service: 'countersign-bank-frontend' } });
  const key = keyFrom(values['key-file']);
  const cards = values.cards === undefined ? await demoCards() : cardsFrom(values.cards);
  const bank = new BankFrontEnd({ privateKey: key.privateKey, cards, logger, now: Date.now });
  const server = await startBankServer({ bank, host: values.host, port, logger });
  logger.info({ port: server.port, keyId: bank.keyId, cards: cards.length, keySource: key.source }, 'bank front-end serving');
  await announceUntilStopSignal(
    `countersign bank-frontend listening on ${values.host}:${server.port}  key id ${bank.keyId} (${key.source})  ${cards.length} cards${values.cards === undefined ? ' (demo table)' : ''}`,
  );
  await server.close();
}

function keyFrom(path: string | undefined): { privateKey: Uint8Array; source: string } {
  if (path === undefined) return { privateKey: generateX25519KeyPair().privateKey, source: 'fresh key' };
  try {
    const { privateKey, created } = loadOrCreateKeyFile(path);
    return { privateKey, source: `${created ? 'created' : 'loaded'} ${path}` };
  } catch (error) {
    if (error instanceof KeyFileError) throw new ConfigError(error.message);
    throw error;
  }
}

function cardsFrom(path: string): CardRecord[] {
  try {
    if (statSync(path).size > cardsFileBytesMax) throw new ConfigError(`--cards file is larger than ${cardsFileBytesMax} bytes`);
    return parseCardsFile(readFileSync(path, 'utf8'));
  } catch (error) {
    if (error instanceof CardsFileError) throw new ConfigError(`${path}: ${error.message}`);
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new ConfigError(`--cards file ${path} does not exist`);
    throw error;
  }
}

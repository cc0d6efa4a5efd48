import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Redis } from 'ioredis';
import { filesUnder, scanText } from './support/secret-scan.js';

/**
 * Secrets at rest (issue 7): every key and every value in Redis (SCAN, then each value read by
 * its type) and every file of the data directory (the ledger journal, keys) are searched for
 * every secret the scenario registered — codes, tokens, API keys, verification secrets in their
 * base32, hex and base64 forms, PINs and passwords. Only hashes and ciphertext may be there.
 * Findings name where, never the secret.
 */

/** Keys read per SCAN step and per pipeline. */
const scanCount = 1_000;
/** Characters of Redis dump scanned per chunk (chunks overlap by a secret's length). */
const chunkChars = 8 * 1024 * 1024;
const overlapChars = 256;

export interface AtRestScan {
  redisKeys: number;
  redisBytes: number;
  files: number;
  fileBytes: number;
  findings: string[];
}

async function dumpValues(redis: Redis, keys: string[]): Promise<string[]> {
  const types = ((await redis.pipeline(keys.map((k) => ['type', k])).exec()) ?? []).map(([, t]) => String(t));
  const reads = keys.map((k, i): [string, ...string[]] => {
    switch (types[i]) {
      case 'string':
        return ['get', k];
      case 'hash':
        return ['hgetall', k];
      case 'set':
        return ['smembers', k];
      case 'zset':
        return ['zrange', k, '0', '-1', 'WITHSCORES'];
      case 'list':
        return ['lrange', k, '0', '-1'];
      case 'stream':
        return ['xrange', k, '-', '+'];
      default:
        return ['exists', k];
    }
  });
  const values = (await redis.pipeline(reads).exec()) ?? [];
  return keys.map((k, i) => `${k}\t${JSON.stringify(values[i]?.[1] ?? null)}`);
}

function scanChunked(text: string, secrets: Set<string>, where: (at: number) => string, findings: string[]): void {
  for (let start = 0; start < text.length; start += chunkChars) {
    const chunk = text.slice(Math.max(0, start - overlapChars), start + chunkChars);
    const offset = Math.max(0, start - overlapChars);
    for (const f of scanText(chunk, secrets)) {
      const finding = `${where(offset + f.at)}: ${f.what}`;
      if (!findings.includes(finding) && findings.length < 50) findings.push(finding);
    }
  }
}

/**
 * The scan proves itself: a canary secret is planted in Redis and in the data directory first,
 * and each must be found (then both are removed and their findings dropped).
 */
export async function scanAtRest(redis: Redis | undefined, dataDir: string, secrets: Set<string>): Promise<AtRestScan> {
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  const canaryKey = 'cs:{reliability}:canary';
  const canaryFile = join(dataDir, 'reliability-canary.txt');
  await redis?.set(canaryKey, JSON.stringify({ note: canary }));
  writeFileSync(canaryFile, `x${canary}\n`);
  try {
    const result = await scanAll(redis, dataDir, new Set([...secrets, canary]));
    const isCanary = (f: string) => f.includes('reliability-canary') || f.includes('{reliability}');
    if (redis !== undefined && !result.findings.some((f) => f.includes('{reliability}')))
      result.findings.push('the scan did not find the canary secret planted in Redis: it cannot be trusted');
    if (!result.findings.some((f) => f.includes('reliability-canary')))
      result.findings.push('the scan did not find the canary secret planted in the data directory: it cannot be trusted');
    return { ...result, findings: result.findings.filter((f) => !isCanary(f) || f.includes('did not find')) };
  } finally {
    await redis?.del(canaryKey);
    rmSync(canaryFile, { force: true });
  }
}

async function scanAll(redis: Redis | undefined, dataDir: string, secrets: Set<string>): Promise<AtRestScan> {
  const result: AtRestScan = { redisKeys: 0, redisBytes: 0, files: 0, fileBytes: 0, findings: [] };
  if (redis !== undefined) {
    const lines: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', '*', 'COUNT', scanCount);
      cursor = next;
      if (keys.length > 0) lines.push(...(await dumpValues(redis, keys)));
    } while (cursor !== '0');
    result.redisKeys = lines.length;
    const text = lines.join('\n');
    result.redisBytes = text.length;
    scanChunked(
      text,
      secrets,
      (at) => `Redis key ${text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\t', text.lastIndexOf('\n', at) + 1)).slice(0, 80)}`,
      result.findings,
    );
  }
  for (const file of filesUnder(dataDir)) {
    const bytes = readFileSync(file);
    result.files += 1;
    result.fileBytes += statSync(file).size;
    // latin1 keeps every byte as one character: a secret stored raw in a binary journal is found too.
    scanChunked(bytes.toString('latin1'), secrets, () => `data file ${relative(dataDir, file)}`, result.findings);
  }
  return result;
}

import { open } from 'node:fs/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { assert } from '../assert.js';
import type { AccountEntry } from './account-table.js';
import { accountRecordSize } from './checkpoint-format.js';
import { encodeAccountWords, eventSize, wordsOf } from './codec.js';

/**
 * The accounts section of a new checkpoint, built off the request path: the previous
 * checkpoint's section read back from its file, with the accounts that changed since (and the new
 * ones) encoded over it. Only changed accounts are copied while writes are held up (state-image.ts),
 * so that pause grows with the traffic between checkpoints, not with the number of accounts.
 */

/** Accounts encoded between two yields to the event loop. */
const accountsPerTurn = 4096;
/** Bytes read from the previous checkpoint per read. */
const readChunkBytes = 4 * 1024 * 1024;

/** Where the previous checkpoint's accounts section is. */
export interface AccountsOnDisk {
  path: string;
  offset: number;
  count: number;
}

export async function accountsSection(previous: AccountsOnDisk | undefined, count: number, changed: readonly AccountEntry[]): Promise<Buffer> {
  const section = Buffer.alloc(count * accountRecordSize);
  if (previous !== undefined && previous.count > 0) {
    assert(previous.count <= count, 'accounts are never removed between checkpoints');
    await readInto(previous.path, previous.offset, section.subarray(0, previous.count * accountRecordSize));
  }
  const words = wordsOf(section);
  for (let i = 0; i < changed.length; i++) {
    const a = changed[i]!;
    assert(a.index < count, 'a changed account outside the image');
    const b = (a.index * accountRecordSize) / 4;
    encodeAccountWords(words, b, a);
    words[b + eventSize / 4] = a.firstTransfer;
    words[b + eventSize / 4 + 1] = a.lastTransfer;
    if (i % accountsPerTurn === accountsPerTurn - 1) await nextTurn();
  }
  return section;
}

async function readInto(path: string, offset: number, target: Buffer): Promise<void> {
  const file = await open(path, 'r');
  try {
    for (let at = 0; at < target.length; ) {
      const { bytesRead } = await file.read(target, at, Math.min(readChunkBytes, target.length - at), offset + at);
      assert(bytesRead > 0, `${path} ended inside its accounts section`);
      at += bytesRead;
    }
  } finally {
    await file.close();
  }
}

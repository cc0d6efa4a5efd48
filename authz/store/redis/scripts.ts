import type { Cluster, Redis } from 'ioredis';
import { toStoreError } from '../redis-client.js';
import { redisScripts, type ScriptArg } from '../redis-scripts.js';
import { claimKeyLua, completeKeyLua, releaseKeyLua, takePayNumberLua } from './claims-lua.js';
import { commitLua } from './commit-lua.js';
import { confirmLua } from './confirm-lua.js';
import { createAllLua, createCountLua, createKeyLua, createRecordLua } from './create-lua.js';
import { isBrokenReply } from './pack.js';
import { claimDueLua, guardEventsLua } from './sweep-lua.js';

const specs = {
  // The steps' replies are packed (pack.ts `unpackReply`): a 1 000-item reply is one bulk string.
  createAll: { lua: createAllLua, reply: 'packed' },
  createKey: { lua: createKeyLua },
  createCount: { lua: createCountLua },
  createRecord: { lua: createRecordLua },
  confirm: { lua: confirmLua, reply: 'packed' },
  commit: { lua: commitLua, reply: 'packed' },
  claimDue: { lua: claimDueLua },
  guard: { lua: guardEventsLua },
  claimKey: { lua: claimKeyLua },
  completeKey: { lua: completeKeyLua },
  releaseKey: { lua: releaseKeyLua },
  takePayNumber: { lua: takePayNumberLua },
} as const;

export type ScriptName = keyof typeof specs;

/** Runs script `name` with these keys and arguments: one EVALSHA (EVAL after NOSCRIPT). */
export type RunScript = (name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]) => Promise<unknown>;

/**
 * The store's scripts on a client. `redisScripts` only sends EVALSHA and EVAL, which a Cluster
 * client routes by the first key's slot; its parameter is typed `Redis`, hence the cast.
 * Failures: connection loss and "busy" replies become `StoreUnavailableError`; an error reply
 * "assertion failed: …" from a script (a broken precondition only the script can see) becomes
 * the plain `Error` the port promises, and so does a packed reply no step makes (`unpackReply`);
 * any other error reply (a script bug) passes unchanged.
 */
export function storeScripts(client: Redis | Cluster): RunScript {
  const scripts = redisScripts(client as Redis, specs);
  return async (name, keys, args) => {
    try {
      return await scripts[name](keys, args);
    } catch (err) {
      if (isBrokenReply(err)) throw err; // a packed reply no step makes (pack.ts): a script bug, not an outage
      const at = err instanceof Error && err.name === 'ReplyError' ? err.message.indexOf('assertion failed:') : -1;
      if (at >= 0) throw new Error((err as Error).message.slice(at), { cause: err });
      throw toStoreError(name, err);
    }
  };
}

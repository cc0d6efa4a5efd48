import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { unpackReply } from './redis/pack.js';

/** A Lua script: its source and, when fixed, how many of its arguments are keys. */
export interface ScriptSpec {
  readonly lua: string;
  /** Undefined: the script takes a variable number of keys, and each call passes the count first. */
  readonly numberOfKeys?: number;
  /**
   * 'packed': the script returns `cmsgpack.pack(reply)`, fetched as a Buffer and unpacked here
   * (redis/pack.ts `unpackReply`): callers get the same nested arrays as from `return reply`.
   */
  readonly reply?: 'packed';
}

type ScriptArg = string | number | Buffer;

/**
 * ioredis makes a Buffer twin of every command (`<command>Buffer`: bulk strings as Buffers) and
 * routes it like the command; its typings leave out EVALSHA's and EVAL's (its `callBuffer` with
 * a command name mis-sends on a single Redis, measured: the SHA went as the command).
 */
interface BufferReplies {
  evalshaBuffer(sha: string, numberOfKeys: number, ...args: ScriptArg[]): Promise<Buffer>;
  evalBuffer(lua: string, numberOfKeys: number, ...args: ScriptArg[]): Promise<Buffer>;
}

/**
 * The scripts as functions that run them with the built-in EVALSHA command, and with EVAL once a
 * reply says NOSCRIPT (a restarted or flushed Redis; the EVAL caches the script again).
 *
 * Not ioredis's `defineCommand`: every script defined on a client is copied, with a Buffer twin,
 * onto each Pipeline the client makes, and auto-pipelining makes one per turn of the event loop:
 * with fifteen scripts defined (we had fourteen) a pipeline cost 17 µs instead of 4 (tight loop) and
 * ended in dictionary mode, and at low load there is about one pipeline per command.
 */
export function redisScripts<const T extends Record<string, ScriptSpec>>(
  redis: Redis,
  specs: T,
): { readonly [K in keyof T]: (...args: ScriptArg[]) => Promise<unknown> } {
  const scripts: Record<string, (...args: ScriptArg[]) => Promise<unknown>> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const sha = createHash('sha1').update(spec.lua).digest('hex');
    scripts[name] = async (...args: ScriptArg[]) => {
      const [numberOfKeys, rest] = spec.numberOfKeys === undefined ? [Number(args[0]), args.slice(1)] : [spec.numberOfKeys, args];
      if (spec.reply === 'packed') {
        let packed: Buffer;
        try {
          packed = await (redis as unknown as BufferReplies).evalshaBuffer(sha, numberOfKeys, ...rest);
        } catch (error) {
          if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
          packed = await (redis as unknown as BufferReplies).evalBuffer(spec.lua, numberOfKeys, ...rest);
        }
        return unpackReply(packed);
      }
      try {
        return await redis.evalsha(sha, numberOfKeys, ...rest);
      } catch (error) {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        return redis.eval(spec.lua, numberOfKeys, ...rest);
      }
    };
  }
  return scripts as { readonly [K in keyof T]: (...args: ScriptArg[]) => Promise<unknown> };
}

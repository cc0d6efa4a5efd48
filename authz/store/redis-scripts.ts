import { createHash } from 'node:crypto';
import { Command, type Redis } from 'ioredis';
import { PackedArg, unpackReply, wireText } from './redis/pack.js';

/** A Lua script: its source, and how it answers. Its keys are given with each call. */
export interface ScriptSpec {
  readonly lua: string;
  /**
   * 'packed': the script returns `cmsgpack.pack(reply)`, fetched as a Buffer and unpacked here
   * (redis/pack.ts `unpackReply`): callers get the same nested arrays as from `return reply`.
   */
  readonly reply?: 'packed';
}

export type ScriptArg = string | number | Buffer | PackedArg;

/**
 * ioredis makes a Buffer twin of every command (`<command>Buffer`: bulk strings as Buffers) and
 * routes it like the command; its typings leave out EVAL's (its `callBuffer` with a command name
 * mis-sends on a single Redis, measured: the SHA went as the command).
 */
interface BufferReplies {
  evalBuffer(lua: string, numberOfKeys: number, ...args: (string | number | Buffer)[]): Promise<Buffer>;
}

/**
 * An EVALSHA whose bytes are already written (`wireEvalsha`): ioredis sends `wire` as it is and
 * routes the command by its keys (`args`: the SHA, the key count and the keys), its reply as a
 * Buffer.
 */
class WireCommand extends Command {
  constructor(
    private readonly wire: Buffer,
    args: (string | number)[],
  ) {
    super('evalsha', args, { replyEncoding: null });
  }

  override toWritable(): Buffer {
    return this.wire;
  }
}

/**
 * Characters (bytes) of a wire command converted by one `write`: one write per argument cost
 * about 0.4 µs each (a 1 000-item create is about 10 000), one write of the whole command was
 * slower still (a string of megabytes); chunks of 16 KiB measured best (1, 4, 16, 64, 256 KiB:
 * 3.8, 3.3, 3.0, 3.1, 8.3 µs per create item against 4.0 for a write per argument, tight loop).
 */
export const wireChunkChars = 16_384;

/**
 * EVALSHA `sha` with `keys` and `args`, its RESP bytes written here: every argument's text is
 * its bytes one char each (pack.ts `wireText`, `PackedArg`), so its length is its `$len` and a
 * latin1 write puts it in place (in chunks of `wireChunkChars`). ioredis builds a command per
 * argument — a `Buffer.byteLength`, a string, a `MixedBuffers` entry and a `write` each — and a
 * 1 000-item create carries about 10 000 (its keys): 12 µs per authorization of the client
 * (bench/README.md, round 6). Sent with `sendCommand`, outside auto-pipelining: a step's calls
 * leave at once, one socket write each.
 */
function wireEvalsha(redis: Redis, sha: string, keys: readonly string[], args: readonly ScriptArg[]): Promise<Buffer> {
  const count = String(keys.length);
  // The RESP text in chunks of about `wireChunkChars`, each written into the Buffer by one latin1 write.
  const chunks: string[] = [];
  let chunk = `*${3 + keys.length + args.length}\r\n$7\r\nEVALSHA\r\n$40\r\n${sha}\r\n$${count.length}\r\n${count}\r\n`;
  let size = 0;
  for (let i = 0; i < keys.length + args.length; i++) {
    const arg = i < keys.length ? keys[i]! : args[i - keys.length]!;
    const text = arg instanceof PackedArg ? arg.bytes : Buffer.isBuffer(arg) ? arg.toString('latin1') : wireText(String(arg));
    chunk += `$${text.length}\r\n${text}\r\n`;
    if (chunk.length >= wireChunkChars) {
      chunks.push(chunk);
      size += chunk.length;
      chunk = '';
    }
  }
  chunks.push(chunk);
  size += chunk.length;
  const wire = Buffer.allocUnsafe(size);
  let at = 0;
  for (const c of chunks) at += wire.write(c, at, 'latin1');
  const command = new WireCommand(wire, [sha, keys.length, ...keys]);
  void redis.sendCommand(command);
  return command.promise as Promise<Buffer>;
}

/** Keys and arguments as ioredis takes them (a packed one as its bytes). */
function allArgs(keys: readonly string[], args: readonly ScriptArg[]): (string | number | Buffer)[] {
  return [...keys, ...args.map(ioredisArg)];
}

/** An argument as ioredis takes it (a packed one as its bytes). */
function ioredisArg(arg: ScriptArg): string | number | Buffer {
  return arg instanceof PackedArg ? arg.toBuffer() : arg;
}

/** A script run with its keys and its other arguments. */
export type ScriptFunction = (keys: readonly string[], args: readonly ScriptArg[]) => Promise<unknown>;

/**
 * The scripts as functions that run them with the built-in EVALSHA command, and with EVAL once a
 * reply says NOSCRIPT (a restarted or flushed Redis; the EVAL caches the script again).
 *
 * Not ioredis's `defineCommand`: every script defined on a client is copied, with a Buffer twin,
 * onto each Pipeline the client makes, and auto-pipelining makes one per turn of the event loop:
 * with fifteen scripts defined (we had fourteen) a pipeline cost 17 µs instead of 4 (tight loop) and
 * ended in dictionary mode, and at low load there is about one pipeline per command.
 */
export function redisScripts<const T extends Record<string, ScriptSpec>>(redis: Redis, specs: T): { readonly [K in keyof T]: ScriptFunction } {
  const scripts: Record<string, ScriptFunction> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const sha = createHash('sha1').update(spec.lua).digest('hex');
    scripts[name] = async (keys, args) => {
      if (spec.reply === 'packed') {
        let packed: Buffer;
        try {
          packed = await wireEvalsha(redis, sha, keys, args);
        } catch (error) {
          if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
          packed = await (redis as unknown as BufferReplies).evalBuffer(spec.lua, keys.length, ...allArgs(keys, args));
        }
        return unpackReply(packed);
      }
      try {
        return await redis.evalsha(sha, keys.length, ...allArgs(keys, args));
      } catch (error) {
        if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
        return redis.eval(spec.lua, keys.length, ...allArgs(keys, args));
      }
    };
  }
  return scripts as { readonly [K in keyof T]: ScriptFunction };
}

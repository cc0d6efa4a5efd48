/**
 * An item's script arguments as ONE argument: its strings one after another in MessagePack (each
 * a `str` object: fixstr, str 8, 16 or 32), which the script turns back into a table of the same
 * strings with `{ cmsgpack.unpack(ARGV[n]) }` (Redis's Lua has cmsgpack built in). ARGV entries
 * are strings, and so is every value here (numbers are written as their decimal text): the
 * scripts read them exactly as they read ARGV.
 *
 * Why: ioredis builds each argument of a command in JavaScript (flattening the array, a `$len`
 * header and a string concatenation per argument, then the whole rope written to the socket);
 * a 1 000-item create carried about 52 000 arguments and the client spent more on them than on
 * the rest of the step. Packed, an item is its keys and one argument (bench/README.md, round 5).
 */
export function packStrings(values: readonly (string | number)[]): Buffer {
  let size = 0;
  const texts = new Array<string>(values.length);
  const lengths = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    const text = typeof value === 'string' ? value : String(value);
    const length = Buffer.byteLength(text, 'utf8');
    texts[i] = text;
    lengths[i] = length;
    size += headerBytes(length) + length;
  }
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (let i = 0; i < texts.length; i++) {
    const length = lengths[i]!;
    if (length < 32) out[at++] = 0xa0 | length;
    else if (length < 0x100) {
      out[at++] = 0xd9;
      out[at++] = length;
    } else if (length < 0x10000) {
      out[at++] = 0xda;
      out.writeUInt16BE(length, at);
      at += 2;
    } else {
      out[at++] = 0xdb;
      out.writeUInt32BE(length, at);
      at += 4;
    }
    at += out.write(texts[i]!, at, length, 'utf8');
  }
  return out;
}

function headerBytes(length: number): number {
  return length < 32 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
}

/**
 * Redis Cluster's key → slot mapping (CRC16/XMODEM of the hash tag, mod 16384), for tests that
 * prove every key one script touches lives in one slot; `CLUSTER KEYSLOT` needs a cluster.
 */
export function clusterSlot(key: string): number {
  return crc16(Buffer.from(hashTag(key), 'utf8')) % 16384;
}

/** The part of a key that is hashed: the first non-empty `{...}`, else the whole key. */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

function crc16(bytes: Buffer): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/**
 * Redis Cluster's key → slot mapping (CRC16/XMODEM of the hash tag, mod 16384): the adapter
 * groups a step's items by slot so that each script call touches one slot.
 */

/** Redis Cluster's slot count, fixed by the protocol. */
export const clusterSlots = 16_384;

/** The slot of a key: the CRC16 of its hash tag (the first non-empty `{...}`), else of the whole key. */
export function slotOf(key: string): number {
  return crc16(Buffer.from(hashTag(key), 'utf8')) % clusterSlots;
}

export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

const table = ((): Uint16Array => {
  const t = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    t[byte] = crc;
  }
  return t;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ table[((crc >> 8) ^ byte) & 0xff]!;
  return crc;
}

/**
 * SMPP 3.4 delivery receipts (Appendix B): a deliver_sm whose esm_class message type is 0x04
 * and whose text reads `id:… sub:… dlvrd:… submit date:… done date:… stat:DELIVRD err:… text:…`.
 * The `receipted_message_id` and `message_state` TLVs, when present, win over the text. Pure.
 */

/** esm_class bits 2..5: the message type. */
export const esmClassTypeMask = 0x3c;
export const esmClassDeliveryReceipt = 0x04;

export type ReceiptFate = 'delivered' | 'failed' | 'pending';

export interface DeliveryReceipt {
  /** The SMSC message id from submit_sm_resp. */
  smscMessageId: string;
  /** DELIVRD, UNDELIV, EXPIRED, REJECTD, DELETED, UNKNOWN, ACCEPTD, ENROUTE… */
  stat: string;
  /** The network error code, when given. */
  err: string;
  fate: ReceiptFate;
}

/** message_state TLV values (SMPP 3.4 §5.3.2.35) as receipt `stat` words. */
const messageStates: Record<number, string> = {
  0: 'SCHEDULED',
  1: 'ENROUTE',
  2: 'DELIVRD',
  3: 'EXPIRED',
  4: 'DELETED',
  5: 'UNDELIV',
  6: 'ACCEPTD',
  7: 'UNKNOWN',
  8: 'REJECTD',
  9: 'SKIPPED',
};

function fateOf(stat: string): ReceiptFate {
  if (stat === 'DELIVRD' || stat === 'DELIVERED') return 'delivered';
  if (stat === 'ENROUTE' || stat === 'ACCEPTD' || stat === 'SCHEDULED' || stat === 'BUFFRED') return 'pending';
  return 'failed';
}

/** The receipt in a deliver_sm, or undefined when it carries no message id. */
export function parseDeliveryReceipt(text: string, tlv: { receiptedMessageId?: unknown; messageState?: unknown }): DeliveryReceipt | undefined {
  const id = typeof tlv.receiptedMessageId === 'string' && tlv.receiptedMessageId !== '' ? tlv.receiptedMessageId : /(?:^|\s)id:(\S+)/i.exec(text)?.[1];
  if (id === undefined) return undefined;
  const textStat = /(?:^|\s)stat:(\w+)/i.exec(text)?.[1]?.toUpperCase();
  const tlvStat = typeof tlv.messageState === 'number' ? messageStates[tlv.messageState] : undefined;
  const stat = tlvStat ?? textStat ?? 'UNKNOWN';
  const err = /(?:^|\s)err:(\w+)/i.exec(text)?.[1] ?? '';
  return { smscMessageId: id, stat, err, fate: fateOf(stat) };
}

/**
 * The forms an SMSC message id may take between submit_sm_resp and the receipt: SMSCs are known
 * to answer in hex and report in decimal (or the reverse), with or without leading zeros.
 */
export function smscIdVariants(id: string): string[] {
  const variants = new Set([id, id.toLowerCase()]);
  const trimmed = id.replace(/^0+(?=.)/, '');
  variants.add(trimmed.toLowerCase());
  if (/^[0-9]{1,30}$/.test(id)) variants.add(BigInt(id).toString(16));
  if (/^[0-9a-f]{1,24}$/i.test(id)) variants.add(BigInt(`0x${id}`).toString(10));
  return [...variants];
}

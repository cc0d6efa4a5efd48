import type { Caller, Channel } from '../model.js';

/**
 * M4: the path class a message travels: the data network (apps, web, merchant backends), the
 * cellular network (SMS and the mobile network's own signalling), or a voice call. A paired
 * device's message must take another class than the payment request.
 */
export type PathClass = 'data' | 'cellular' | 'voice';

export function pathOfChannel(channel: Channel): PathClass {
  if (channel === 'SMS' || channel === 'MOBILE_NETWORK') return 'cellular';
  if (channel === 'VOICE') return 'voice';
  return 'data';
}

/** The path a proof arrived on: the telco bridge relays SMS (cellular); payers and operators call over the data network. */
export function pathOfCaller(caller: Caller): PathClass {
  return caller.kind === 'service' ? 'cellular' : 'data';
}

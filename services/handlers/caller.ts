import type { HandlerContext } from '@connectrpc/connect';
import { invalidArgument, permissionDenied, unauthenticated } from '../../authz/errors.js';
import type { Caller } from '../../authz/model.js';
import { isHexId } from '../../authz/validation.js';
import { principalKey } from '../rpc/interceptors.js';

/** The authenticated caller of this RPC, as the domain sees it. */
export function callerOf(ctx: HandlerContext): Caller {
  const principal = ctx.values.get(principalKey);
  if (principal === undefined) throw unauthenticated('missing or invalid API key');
  if (principal.kind === 'merchant') return { kind: 'merchant', merchantId: principal.id };
  if (principal.kind === 'payer') return { kind: 'payer', payerId: principal.id };
  if (principal.kind === 'service') return { kind: 'service' };
  return { kind: 'admin' };
}

/** The merchant calling, or PERMISSION_DENIED for any other kind of caller. */
export function merchantOf(ctx: HandlerContext): string {
  const caller = callerOf(ctx);
  if (caller.kind !== 'merchant') throw permissionDenied('this method needs merchant credentials');
  return caller.merchantId;
}

/** The payer calling, or PERMISSION_DENIED. */
export function payerOf(ctx: HandlerContext): string {
  const caller = callerOf(ctx);
  if (caller.kind !== 'payer') throw permissionDenied('this method needs payer credentials');
  return caller.payerId;
}

/** Operators only. */
export function requireAdmin(ctx: HandlerContext): void {
  if (callerOf(ctx).kind !== 'admin') throw permissionDenied('this method needs operator credentials');
}

/** Page tokens are opaque to callers: base64url of the last id of the previous page. */
export function decodePageToken(token: string): string | undefined {
  if (token === '') return undefined;
  // Canonical base64url only: Node's decoder skips characters outside the alphabet.
  const id = Buffer.from(token, 'base64url').toString();
  if (!isHexId(id) || encodePageToken(id) !== token) throw invalidArgument('page_token', 'is not one this server issued');
  return id;
}

export function encodePageToken(lastId: string | undefined): string {
  return lastId === undefined ? '' : Buffer.from(lastId).toString('base64url');
}

/** Page size: 0 means the default (100); more than 1000 is INVALID_ARGUMENT. */
export function pageSize(requested: number): number {
  if (requested > pageSizeMax) throw invalidArgument('page_size', `must be at most ${pageSizeMax}`);
  return requested === 0 ? pageSizeDefault : requested;
}

export const pageSizeDefault = 100;
export const pageSizeMax = 1000;

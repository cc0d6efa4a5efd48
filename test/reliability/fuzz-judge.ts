import { randomBytes } from 'node:crypto';
import { Code } from '@connectrpc/connect';
import type { BatchConfirmPaymentsResponse, BatchCreatePaymentsResponse } from '../../gen/countersign/v1/payments_pb.js';
import { codeOfTag, freshKeyMarker, isOversize, oversizeString, type Tag } from './fuzz-fields.js';
import { type CallerName, type FuzzRequest, kindOf } from './fuzz-requests.js';
import type { FuzzWorld } from './fuzz-world.js';
import { type Credential, codeLabel, type Outcome } from './security-rpc.js';

/**
 * Running one fuzz request and judging its answer: the credential of its caller, unique keys
 * for `$fresh`, never a payment's own correct code, and the verdict — a server error (INTERNAL,
 * UNKNOWN), no answer, or an answer outside the precise ones is a violation.
 */

export function credentialOf(world: FuzzWorld, caller: CallerName): Credential {
  switch (caller) {
    case 'admin':
      return { key: world.adminKey };
    case 'A':
    case 'B':
      return { key: world.merchants[caller].key };
    case 'none':
      return undefined;
    case 'bogus':
      return { key: `cs_live_${randomBytes(18).toString('base64url')}` };
    case 'oversizedKey':
      return { key: `cs_live_${'k'.repeat(300)}` };
    case 'emptyBearer':
      return { headers: { authorization: 'Bearer ' } };
    default: {
      const actor =
        caller === 'zero'
          ? world.zero
          : caller === 'replayer'
            ? world.replayer
            : caller === 'expirer'
              ? world.expirer
              : world.targets[Number(caller.slice(1))]!;
      return { key: actor.key };
    }
  }
}

let keySerial = 0;

/** The input as sent: `$fresh` keys made unique; a second code equal to its payment's own correct one is changed. */
export function materialize(input: Record<string, unknown>, correct: Map<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...input };
  if (out.idempotencyKey === freshKeyMarker) out.idempotencyKey = `fz-${process.pid}-${++keySerial}`;
  if (Array.isArray(out.items)) out.items = out.items.map((item: Record<string, unknown>) => materialize(item, correct));
  const id = typeof out.paymentId === 'string' ? out.paymentId : undefined;
  const own = id === undefined ? undefined : correct.get(id);
  if (own !== undefined && out.secondCode === own) out.secondCode = flip(own);
  const proof = out.proof as { case?: string; value?: unknown } | undefined;
  if (own !== undefined && proof?.case === 'secondCode' && proof.value === own) out.proof = { case: 'secondCode', value: flip(own) };
  return out;
}

const flip = (code: string): string => code.slice(0, -1) + String((Number(code.at(-1)) + 1) % 10);

/** True when some string anywhere in the input is the oversize one. */
export function hasOversize(value: unknown): boolean {
  if (isOversize(value)) return true;
  if (Array.isArray(value)) return value.some(hasOversize);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) return Object.values(value).some(hasOversize);
  return false;
}

/** Codes that are never a precise answer to a request: the server failed, or did not answer. */
const serverFailures = new Set<Code>([Code.Internal, Code.Unknown, Code.DataLoss]);
const noAnswer = new Set<Code>([Code.DeadlineExceeded, Code.Unavailable, Code.Canceled]);

export interface Verdict {
  /** Empty when the answer was precise. */
  problems: string[];
}

const allowedText = (tags: readonly Tag[], ok: boolean): string =>
  [...(ok ? ['OK'] : []), ...new Set(tags.map((t) => codeLabel(codeOfTag[t])))].join('|') || 'nothing';

function judgeCode(code: Code | 0, tags: readonly Tag[], okAllowed: boolean, what: string): string | undefined {
  if (code !== 0 && serverFailures.has(code)) return `${what}: server error ${codeLabel(code)}`;
  if (code !== 0 && noAnswer.has(code)) return `${what}: no answer (${codeLabel(code)})`;
  if (code === 0) return okAllowed ? undefined : `${what}: accepted (OK), expected ${allowedText(tags, false)}`;
  if (tags.some((t) => codeOfTag[t] === code)) return undefined;
  return `${what}: ${codeLabel(code)}, expected ${allowedText(tags, okAllowed)}`;
}

export function judge(req: FuzzRequest, sent: Record<string, unknown>, outcome: Outcome): Verdict {
  const code = outcome.ok ? 0 : outcome.code;
  const oversize = hasOversize(sent);
  if (kindOf(req.caller) === 'anon') {
    const allowed = oversize ? [Code.ResourceExhausted, Code.Unauthenticated] : [Code.Unauthenticated];
    return { problems: allowed.includes(code as Code) ? [] : [`no valid credential: ${codeLabel(code)}, expected ${allowed.map(codeLabel).join('|')}`] };
  }
  if (oversize) return { problems: code === Code.ResourceExhausted ? [] : [`message over 4 MiB: ${codeLabel(code)}, expected RESOURCE_EXHAUSTED`] };
  if (concurrentDuplicate(sent, outcome)) return { problems: [] };
  const problem = judgeCode(code, req.tags, req.okAllowed, 'answer');
  if (problem !== undefined || !outcome.ok || req.items === undefined) return { problems: problem === undefined ? [] : [problem] };
  return { problems: judgeItems(req, outcome) };
}

/**
 * The concurrent workers share a few idempotency keys ('fz-pool-N', fuzz-requests.ts), so two of
 * them may send the same keyed request at once; the one that meets the other's claim is answered
 * UNAVAILABLE, reason IN_PROGRESS, with retry_after_ms — the documented answer to a concurrent
 * duplicate (authz/enrollment.ts `claim`; payment creates alike), not a failure to answer. Only for a pooled key: a fresh key
 * is never in progress elsewhere. (CI met it once, seed 2785821719: two RotateSecret calls.)
 */
export function concurrentDuplicate(sent: Record<string, unknown>, outcome: Outcome): boolean {
  if (outcome.ok || outcome.code !== Code.Unavailable || outcome.reason !== 'IN_PROGRESS' || outcome.meta.retry_after_ms === undefined) return false;
  return typeof sent.idempotencyKey === 'string' && sent.idempotencyKey.startsWith('fz-pool-');
}

function judgeItems(req: FuzzRequest, outcome: Outcome & { ok: true }): string[] {
  const results = (outcome.value as BatchCreatePaymentsResponse | BatchConfirmPaymentsResponse).results;
  const items = req.items!;
  if (results.length !== items.length) return [`batch of ${items.length} answered ${results.length} results`];
  const problems: string[] = [];
  results.forEach((r, i) => {
    if (r.index !== i) problems.push(`batch result ${i} has index ${r.index}`);
    const code = r.outcome.case === 'error' ? (r.outcome.value.code as Code) : 0;
    const said = r.outcome.case === 'error' ? ` "${r.outcome.value.message.slice(0, 100)}"` : '';
    const problem = judgeCode(code, items[i]!.tags, items[i]!.okAllowed, `item ${i}${said}`);
    if (problem !== undefined) problems.push(problem);
  });
  return problems;
}

/** A short, secret-free rendering of an input for a report (big strings by length, the world's codes and keys as <secret>). */
export function render(value: unknown, depth = 0, secrets: ReadonlySet<string> = new Set()): string {
  if (value === oversizeString) return `<${oversizeString.length} chars>`;
  if (typeof value === 'string' && secrets.has(value)) return '<secret>';
  if (typeof value === 'string') return value.length > 80 ? `<${value.length} chars "${value.slice(0, 12)}…">` : JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value))
    return value.length > 6
      ? `[${value
          .slice(0, 3)
          .map((v) => render(v, depth + 1, secrets))
          .join(', ')}, … ${value.length} items]`
      : `[${value.map((v) => render(v, depth + 1, secrets)).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    if (depth > 4) return '{…}';
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${render(v, depth + 1, secrets)}`)
      .join(', ')}}`;
  }
  return String(value);
}

/**
 * The smallest input that still gets the same wrong answer: field by field, each field is
 * dropped (proto default) or a list shortened to its first item, and the change is kept when the
 * answer's status stays the same. Bounded by `triesMax` calls.
 */
export async function minimize(
  input: Record<string, unknown>,
  stillFails: (candidate: Record<string, unknown>) => Promise<boolean>,
  triesMax = 40,
): Promise<Record<string, unknown>> {
  let current = input;
  let tries = 0;
  for (let pass = 0; pass < 2; pass += 1) {
    let changed = false;
    for (const field of Object.keys(current)) {
      if (tries >= triesMax) return current;
      const value = current[field];
      const candidates: Record<string, unknown>[] = [];
      if (Array.isArray(value) && value.length > 1) candidates.push({ ...current, [field]: value.slice(0, 1) });
      if (field !== 'idempotencyKey' || value === '') candidates.push(Object.fromEntries(Object.entries(current).filter(([k]) => k !== field)));
      for (const candidate of candidates) {
        tries += 1;
        if (await stillFails(candidate)) {
          current = candidate;
          changed = true;
          break;
        }
      }
    }
    if (!changed) break;
  }
  return current;
}

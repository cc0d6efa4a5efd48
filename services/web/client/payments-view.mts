/**
 * The payer's payments as cards: amount and payee first (exactly what the second code is bound
 * to: the values come from GetChallenge and go unchanged into the OCRA question), the state in
 * words, and the actions — approve (compute the second code here and send it with
 * ConfirmPayment), show the code for typing into another terminal, decline.
 */

import { timestampMs } from '@bufbuild/protobuf/wkt';
import { Code, ConnectError } from '@connectrpc/connect';
import { Channel, Factor, type Payment, PaymentState } from '../../../gen/countersign/v1/common_pb.js';
import type { GetChallengeResponse } from '../../../gen/countersign/v1/payer_pb.js';
import { formatMoney } from '../../../ledger/chart.js';
import { idempotencyKey, type PayerClient } from './api.mjs';
import { CardInputError, sealCard } from './card-envelope.mjs';
import { button, el } from './dom.mjs';
import { OcraError, type SecondCodeFields, secondCode } from './ocra.mjs';
import type { Session } from './vault.mjs';
import { errorWords, stateWords } from './words.mjs';

/** Cards kept on the page; the oldest finished ones go first. */
export const entriesMax = 50;

interface Note {
  readonly text: string;
  readonly tone: 'bad' | 'good';
}

interface Entry {
  payment: Payment;
  challenge: GetChallengeResponse | undefined;
  /** Kept after the challenge is dropped, so a finished card still names the payee. */
  payeeName: string;
  typedFirstCode: string;
  /** M5, what the payer typed into the card form; emptied as soon as it is sealed. */
  card: { pan: string; expiry: string; pin: string };
  note: Note | undefined;
  shownCode: string | undefined;
  busy: boolean;
  /** Set when the payment left the pending list while the stream was down. */
  localEnd: 'expired' | 'gone' | undefined;
  readonly item: HTMLLIElement;
  meta: HTMLElement | undefined;
}

/** Factors whose wrong answers count against the payment's attempts (a bank decides cards itself). */
const countedFactors = new Set([Factor.SECOND_CODE, Factor.FIRST_CODE_AND_PIN, Factor.SMS_OTP, Factor.IVR_PASSWORD, Factor.AUTH_PASSWORD]);

const finalStates = new Set([PaymentState.SUCCEEDED, PaymentState.DECLINED, PaymentState.EXPIRED, PaymentState.CANCELLED]);

function pendingFactors(p: Payment): Factor[] {
  return p.requiredFactors.filter((f) => !p.satisfiedFactors.includes(f));
}

function expiresInWords(expiresAtMs: number, nowMs: number): string {
  const s = Math.max(0, Math.floor((expiresAtMs - nowMs) / 1000));
  return `expires in ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** "12/30" or "1230" (MM/YY as printed on cards) → "3012" (YYMM, ENVELOPE.md); anything else as typed. */
function yymm(typed: string): string {
  const m = /^\s*(\d{2})\s*\/?\s*(\d{2})\s*$/.exec(typed);
  return m === null ? typed : `${m[2]}${m[1]}`;
}

function deliveryWords(c: GetChallengeResponse): string {
  const d = c.firstCodeDelivery;
  if (d === undefined) return 'The first code';
  if (d.channel === Channel.SMS) return `The first code sent by SMS to ${d.destinationMasked}`;
  if (d.channel === Channel.VOICE) return `The first code read out in a call to ${d.destinationMasked}`;
  return `The first code (sent to ${d.destinationMasked || 'you'})`;
}

export class PaymentsView {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly session: Session,
    private readonly client: PayerClient,
    private readonly list: HTMLOListElement,
    private readonly empty: HTMLElement,
  ) {}

  /** A payment as the server describes it now. */
  update(payment: Payment): void {
    const entry = this.entries.get(payment.id) ?? this.add(payment);
    entry.payment = payment;
    entry.localEnd = undefined;
    if (finalStates.has(payment.state)) {
      entry.challenge = undefined; // drops the first code with it
      entry.shownCode = undefined;
    } else if (payment.state === PaymentState.CHALLENGED && entry.challenge === undefined) {
      void this.loadChallenge(entry);
    }
    this.render(entry);
  }

  /** After a poll: CHALLENGED cards missing from `pendingIds` ended while the stream was down. */
  polled(pendingIds: ReadonlySet<string>, nowMs: number): void {
    for (const entry of this.entries.values()) {
      if (entry.payment.state !== PaymentState.CHALLENGED || pendingIds.has(entry.payment.id)) continue;
      const expiresAtMs = entry.payment.expiresAt === undefined ? Infinity : timestampMs(entry.payment.expiresAt);
      entry.localEnd = expiresAtMs <= nowMs ? 'expired' : 'gone';
      entry.challenge = undefined;
      entry.shownCode = undefined;
      this.render(entry);
    }
  }

  /** Refreshes the countdowns. */
  tick(nowMs: number): void {
    for (const entry of this.entries.values()) {
      if (entry.meta !== undefined && entry.payment.expiresAt !== undefined) entry.meta.textContent = this.metaText(entry, nowMs);
    }
  }

  private add(payment: Payment): Entry {
    const entry: Entry = {
      payment,
      challenge: undefined,
      payeeName: '',
      typedFirstCode: '',
      card: { pan: '', expiry: '', pin: '' },
      note: undefined,
      shownCode: undefined,
      busy: false,
      localEnd: undefined,
      item: el('li', 'payment'),
      meta: undefined,
    };
    entry.item.dataset.paymentId = payment.id;
    this.entries.set(payment.id, entry);
    this.list.prepend(entry.item);
    this.empty.hidden = true;
    this.evict();
    return entry;
  }

  private evict(): void {
    for (const [id, entry] of this.entries) {
      if (this.entries.size <= entriesMax) return;
      if (!finalStates.has(entry.payment.state) && entry.localEnd === undefined) continue;
      entry.item.remove();
      this.entries.delete(id);
    }
  }

  private async loadChallenge(entry: Entry): Promise<void> {
    try {
      entry.challenge = await this.client.getChallenge({ paymentId: entry.payment.id });
      entry.payeeName = entry.challenge.payeeName;
    } catch (error) {
      entry.note = { text: errorWords(error), tone: 'bad' };
    }
    this.render(entry);
  }

  // ---------------------------------------------------------------------------- actions

  /** The fields the code is bound to, from GetChallenge: exactly what the card shows. */
  private fields(entry: Entry): SecondCodeFields | string {
    const c = entry.challenge;
    if (c === undefined) return 'The payment details are still loading. Try again in a moment.';
    if (c.ocraSuite !== this.session.suite) return `This payment needs OCRA suite ${c.ocraSuite}; this terminal was enrolled for ${this.session.suite}.`;
    const firstCode = c.firstCode !== '' ? c.firstCode : entry.typedFirstCode.replace(/\s+/g, '');
    if (!/^\d{8}$/.test(firstCode)) return 'Type the 8-digit first code you received.';
    return { firstCode, amount: c.amount, currency: c.currency, payeeAccountId: c.payeeAccountId };
  }

  private async compute(entry: Entry): Promise<string | undefined> {
    const fields = this.fields(entry);
    if (typeof fields === 'string') {
      entry.note = { text: fields, tone: 'bad' };
      return undefined;
    }
    try {
      return await secondCode(this.session.key, this.session.suite, fields);
    } catch (error) {
      entry.note = { text: error instanceof OcraError ? error.message : 'The code could not be computed in this browser.', tone: 'bad' };
      return undefined;
    }
  }

  private async busy(entry: Entry, work: () => Promise<void>): Promise<void> {
    if (entry.busy) return;
    entry.busy = true;
    entry.note = undefined;
    this.render(entry);
    try {
      await work();
    } finally {
      entry.busy = false;
      this.render(entry);
    }
  }

  private approve(entry: Entry): Promise<void> {
    return this.busy(entry, async () => {
      const code = await this.compute(entry);
      if (code === undefined) return;
      try {
        const res = await this.client.confirmPayment({
          idempotencyKey: idempotencyKey('confirm'),
          paymentId: entry.payment.id,
          proof: { case: 'secondCode', value: code },
        });
        entry.shownCode = undefined;
        if (res.payment !== undefined) this.update(res.payment);
      } catch (error) {
        entry.note = { text: errorWords(error), tone: 'bad' };
        if (ConnectError.from(error).code === Code.PermissionDenied) await this.loadChallenge(entry);
      }
    });
  }

  private show(entry: Entry): Promise<void> {
    return this.busy(entry, async () => {
      entry.shownCode = await this.compute(entry);
    });
  }

  /** M5: seals card and PIN for the bank in this browser and relays the envelope with ConfirmPayment. */
  private payWithCard(entry: Entry): Promise<void> {
    return this.busy(entry, async () => {
      const c = entry.challenge;
      if (c?.bankKey === undefined) {
        entry.note = { text: 'The bank key is still loading. Try again in a moment.', tone: 'bad' };
        return;
      }
      const typed = { pan: entry.card.pan.replace(/[\s-]/g, ''), expiry: yymm(entry.card.expiry), pin: entry.card.pin };
      entry.card = { pan: '', expiry: '', pin: '' };
      let envelope: Awaited<ReturnType<typeof sealCard>>;
      try {
        envelope = await sealCard(c.bankKey, { id: entry.payment.id, merchantId: entry.payment.merchantId, amount: c.amount, currency: c.currency }, typed);
      } catch (error) {
        entry.note = { text: error instanceof CardInputError ? `Card: ${error.message}.` : 'The card could not be sealed in this browser.', tone: 'bad' };
        return;
      }
      try {
        const res = await this.client.confirmPayment({
          idempotencyKey: idempotencyKey('card'),
          paymentId: entry.payment.id,
          proof: { case: 'bankCard', value: envelope },
        });
        if (res.payment !== undefined) this.update(res.payment);
      } catch (error) {
        entry.note = { text: errorWords(error), tone: 'bad' };
      }
    });
  }

  private decline(entry: Entry): Promise<void> {
    return this.busy(entry, async () => {
      try {
        const res = await this.client.declinePayment({
          idempotencyKey: idempotencyKey('decline'),
          paymentId: entry.payment.id,
          reason: 'declined on the web terminal',
        });
        if (res.payment !== undefined) this.update(res.payment);
      } catch (error) {
        entry.note = { text: errorWords(error), tone: 'bad' };
      }
    });
  }

  // ---------------------------------------------------------------------------- rendering

  private metaText(entry: Entry, nowMs: number): string {
    const parts = [expiresInWords(timestampMs(entry.payment.expiresAt!), nowMs)];
    const left = entry.challenge?.attemptsLeft ?? entry.payment.attemptsLeft;
    const answersCounted = pendingFactors(entry.payment).some((f) => countedFactors.has(f));
    if (answersCounted && left < 5) parts.push(`${left} ${left === 1 ? 'attempt' : 'attempts'} left`);
    return parts.join(' · ');
  }

  private render(entry: Entry): void {
    const p = entry.payment;
    const c = entry.challenge;
    const amount = c?.amount ?? p.amount;
    const currency = c?.currency ?? p.currency;
    const payee = c?.payeeAccountId ?? p.payeeAccountId;
    const words =
      entry.localEnd === 'expired'
        ? stateWords({ ...p, state: PaymentState.EXPIRED })
        : entry.localEnd === 'gone'
          ? { title: 'No longer waiting', detail: 'It was answered, declined or cancelled elsewhere.', tone: 'neutral' as const }
          : stateWords(p);
    entry.item.dataset.state = entry.localEnd === 'expired' ? 'EXPIRED' : PaymentState[p.state];
    const waiting = p.state === PaymentState.CHALLENGED && entry.localEnd === undefined;
    entry.meta = waiting && p.expiresAt !== undefined ? el('p', 'meta', this.metaText(entry, Date.now())) : undefined;
    const parts: (Node | undefined)[] = [
      el('p', 'amount', formatMoney(amount, currency)),
      el('p', 'payee', `to ${entry.payeeName || 'payee'}`),
      el('p', 'account', `payee account ${payee}`),
      p.description === '' ? undefined : el('p', 'description', p.description),
      el('span', `state ${words.tone}`, words.title),
      el('p', 'detail', words.detail),
      entry.meta,
      waiting ? this.controls(entry) : undefined,
      entry.shownCode === undefined ? undefined : this.codeBox(entry.shownCode, amount, currency, entry.payeeName),
      entry.note === undefined || entry.note.text === words.detail ? undefined : el('p', `note ${entry.note.tone}`, entry.note.text),
    ];
    entry.item.replaceChildren(...parts.filter((n): n is Node => n !== undefined));
  }

  private controls(entry: Entry): HTMLElement {
    const box = el('div', 'controls');
    const secondCodePending = pendingFactors(entry.payment).includes(Factor.SECOND_CODE);
    if (secondCodePending && entry.challenge !== undefined && entry.challenge.firstCode === '') box.append(this.firstCodeInput(entry));
    const cardPending = pendingFactors(entry.payment).includes(Factor.BANK_CARD_PIN) && entry.challenge?.bankKey !== undefined;
    if (cardPending) box.append(this.cardForm(entry));
    const actions = el('div', 'actions');
    if (cardPending) actions.append(button('Pay with card', 'approve pay-card', () => void this.payWithCard(entry)));
    if (secondCodePending) {
      actions.append(
        button('Approve', 'approve', () => void this.approve(entry)),
        button('Show code', 'secondary show', () => void this.show(entry)),
      );
    }
    actions.append(button('Decline', 'danger decline', () => void this.decline(entry)));
    for (const b of actions.querySelectorAll('button')) b.disabled = entry.busy;
    box.append(actions);
    return box;
  }

  private cardForm(entry: Entry): HTMLElement {
    const input = (name: keyof Entry['card'], label: string, type: string, maxLength: number) => {
      const field = el('input', `card-${name}`);
      field.type = type;
      field.inputMode = 'numeric';
      field.autocomplete = 'off';
      field.maxLength = maxLength;
      field.value = entry.card[name];
      field.addEventListener('input', () => (entry.card[name] = field.value));
      return el('label', '', label, field);
    };
    return el(
      'fieldset',
      'card-terminal',
      undefined,
      el('legend', '', 'Reference card terminal (M5)'),
      el('p', 'hint', 'Card number and PIN are sealed in this browser for your bank; countersign only relays them and cannot read them.'),
      input('pan', 'Card number', 'text', 23),
      input('expiry', 'Expiry (MM/YY)', 'text', 5),
      input('pin', 'Card PIN', 'password', 12),
    );
  }

  private firstCodeInput(entry: Entry): HTMLElement {
    const input = el('input', 'first-code');
    input.inputMode = 'numeric';
    input.autocomplete = 'one-time-code';
    input.maxLength = 9;
    input.value = entry.typedFirstCode;
    input.addEventListener('input', () => (entry.typedFirstCode = input.value));
    return el('label', '', deliveryWords(entry.challenge!), input);
  }

  private codeBox(code: string, amount: bigint, currency: string, payeeName: string): HTMLElement {
    return el(
      'div',
      'code',
      undefined,
      el('strong', 'second-code', `${code.slice(0, 4)} ${code.slice(4)}`),
      el('span', '', `Type this second code into the other terminal. It approves only ${formatMoney(amount, currency)} to ${payeeName || 'this payee'}.`),
    );
  }
}

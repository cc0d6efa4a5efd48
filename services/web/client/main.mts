/**
 * The payer web terminal (issue 8), bundled by services/web/assets.ts. Screens: enroll (once),
 * unlock (local PIN, checked here: nothing is sent before it opens), payments.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { payerClient, watchPayments } from './api.mjs';
import { byId, field, say, showScreen } from './dom.mjs';
import { PaymentsView } from './payments-view.mjs';
import { parseSecretInput, SecretInputError } from './secret-input.mjs';
import { enroll, enrolledPayer, forget, localPinLengthMax, localPinLengthMin, type Session, unlock } from './vault.mjs';
import { errorWords } from './words.mjs';

/** How often the countdowns refresh, milliseconds. */
export const tickIntervalMs = 1_000;
/** The terminal token's longest accepted length (the server reads at most 256 characters). */
export const tokenCharsMax = 256;

let stopWatching: AbortController | undefined;

function busy(form: HTMLFormElement, on: boolean): void {
  for (const b of form.querySelectorAll('button')) b.disabled = on;
}

function clearSecrets(form: HTMLFormElement): void {
  for (const input of form.querySelectorAll('input[type=password]')) (input as HTMLInputElement).value = '';
}

async function showUnlock(): Promise<void> {
  const payerId = await enrolledPayer();
  if (payerId === undefined) return showEnroll();
  byId('unlock-payer').textContent = payerId;
  showScreen('unlock');
  (byId<HTMLFormElement>('unlock-form').elements.namedItem('pin') as HTMLInputElement).focus();
}

function showEnroll(): void {
  showScreen('enroll');
}

/** Checks the enrollment form; a string is what is wrong, in words. */
function readEnrollment(form: HTMLFormElement): { payerId: string; token: string; secret: Uint8Array<ArrayBuffer>; suite: string; pin: string } | string {
  const payerId = field(form, 'payerId').toLowerCase();
  const token = field(form, 'token');
  const pin = field(form, 'pin', false);
  if (!/^[0-9a-f]{32}$/.test(payerId)) return 'The payer id is 32 hexadecimal digits.';
  if (token === '' || token.length > tokenCharsMax || /\s/.test(token)) return 'The terminal token is missing or malformed.';
  if (pin.length < localPinLengthMin || pin.length > localPinLengthMax) return `The local PIN needs ${localPinLengthMin} to ${localPinLengthMax} characters.`;
  if (pin !== field(form, 'pinAgain', false)) return 'The two local PINs differ.';
  try {
    const { secret, suite } = parseSecretInput(field(form, 'secret'));
    return { payerId, token, secret, suite, pin };
  } catch (error) {
    return error instanceof SecretInputError ? `Verification secret: ${error.message}.` : 'The verification secret could not be read.';
  }
}

/** The token must be this payer's: ListPendingPayments answers only the token's own payer. */
async function tokenProblem(payerId: string, token: string): Promise<string | undefined> {
  try {
    await payerClient(location.origin, token).listPendingPayments({ payerId, pageSize: 1 });
    return undefined;
  } catch (error) {
    const e = ConnectError.from(error);
    if (e.code === Code.Unauthenticated) return 'The server did not accept this terminal token.';
    if (e.code === Code.PermissionDenied) return 'This terminal token belongs to another payer.';
    return errorWords(e);
  }
}

async function onEnroll(form: HTMLFormElement): Promise<void> {
  const input = readEnrollment(form);
  if (typeof input === 'string') return say(input);
  const problem = await tokenProblem(input.payerId, input.token);
  if (problem !== undefined) return say(problem);
  await enroll(input);
  input.secret.fill(0);
  clearSecrets(form);
  form.reset();
  const opened = await unlock(input.pin);
  if (opened.kind !== 'unlocked') throw new Error('assertion failed: a fresh enrollment did not open');
  say('This terminal is enrolled. Its secret is stored only here, locked with your local PIN.', 'good');
  startSession(opened.session);
}

async function onUnlock(form: HTMLFormElement): Promise<void> {
  const pin = field(form, 'pin', false);
  clearSecrets(form);
  const result = await unlock(pin);
  if (result.kind === 'unlocked') {
    say('');
    return startSession(result.session);
  }
  if (result.kind === 'wrong_pin')
    return say(`Wrong local PIN. ${result.triesLeft} ${result.triesLeft === 1 ? 'try' : 'tries'} left before this terminal forgets its enrollment.`);
  if (result.kind === 'forgotten') say('Too many wrong local PINs: this terminal forgot its enrollment. Enroll it again (ask for a new secret).');
  else say('This terminal is not enrolled.');
  showEnroll();
}

function connectionLine(text: string): void {
  const line = byId('connection');
  line.textContent = text;
  line.hidden = text === '';
}

function startSession(session: Session): void {
  showScreen('payments');
  const client = payerClient(location.origin, session.token);
  const view = new PaymentsView(session, client, byId<HTMLOListElement>('payment-list'), byId('empty'));
  stopWatching = new AbortController();
  const ticker = setInterval(() => view.tick(Date.now()), tickIntervalMs);
  stopWatching.signal.addEventListener('abort', () => clearInterval(ticker), { once: true });
  connectionLine('Connecting…');
  void watchPayments(
    client,
    session.payerId,
    {
      payment: (p) => view.update(p),
      polled: (ids) => view.polled(ids, Date.now()),
      mode: (m) => connectionLine(m === 'stream' ? 'Listening: new payments appear here.' : 'Reconnecting… checking for payments every few seconds.'),
      fatal: (e) => {
        say(errorWords(e));
        connectionLine('');
      },
    },
    stopWatching.signal,
  );
}

/** Submits `form` through `handler`, never through the browser (no secret in a URL). */
function onSubmit(id: string, handler: (form: HTMLFormElement) => Promise<void>): void {
  const form = byId<HTMLFormElement>(id);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(form, true);
    handler(form)
      .catch(() => say('Something went wrong in this browser. Reload the page and try again.'))
      .finally(() => busy(form, false));
  });
}

function boot(): void {
  if (!window.isSecureContext || globalThis.crypto?.subtle === undefined || globalThis.indexedDB === undefined) {
    say('This terminal needs a secure page (https, or http://localhost) with WebCrypto and IndexedDB.');
    return;
  }
  onSubmit('enroll-form', onEnroll);
  onSubmit('unlock-form', onUnlock);
  byId('lock').addEventListener('click', () => location.reload());
  byId('forget').addEventListener('click', () => void forget().then(() => (say('This terminal forgot its enrollment.', 'good'), showEnroll())));
  void showUnlock();
}

boot();

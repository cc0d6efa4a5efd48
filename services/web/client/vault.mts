/**
 * The terminal's enrollment, kept in IndexedDB and wrapped under the payer's local PIN:
 * PBKDF2-SHA256 (`pbkdf2Iterations`) turns PIN + random salt into a non-extractable AES-256-GCM
 * key that seals the verification secret and the terminal token together. The associated data
 * binds the payer id and suite stored beside them. Nothing secret is stored in clear, and the PIN
 * never leaves the page: a wrong PIN fails here, before any request. After
 * `localPinAttemptsMax` wrong PINs in a row the terminal forgets the enrollment.
 */
import { importOcraKey, parseTerminalSuite } from './ocra.mjs';

/** PBKDF2-HMAC-SHA256 iterations (OWASP's 2023 figure); stored per record so it can be raised. */
export const pbkdf2Iterations = 600_000;
export const saltBytes = 16;
export const ivBytes = 12;
/** Wrong local PINs in a row before the wrapped enrollment is erased. */
export const localPinAttemptsMax = 5;
/** The shortest local PIN accepted at enrollment. */
export const localPinLengthMin = 6;
export const localPinLengthMax = 64;

const dbName = 'countersign-terminal';
const storeName = 'vault';
const recordKey = 'enrollment';
const recordVersion = 1;

interface VaultRecord {
  version: number;
  payerId: string;
  suite: string;
  iterations: number;
  salt: Uint8Array<ArrayBuffer>;
  iv: Uint8Array<ArrayBuffer>;
  /** AES-GCM of `secretLength(1) | secret | token (UTF-8)`, tag included. */
  sealed: ArrayBuffer;
  failedUnlocks: number;
}

/** An unlocked terminal: the token for the API and the secret as a non-extractable HMAC key. */
export interface Session {
  readonly payerId: string;
  readonly token: string;
  readonly suite: string;
  readonly key: CryptoKey;
}

export type UnlockResult = { kind: 'unlocked'; session: Session } | { kind: 'wrong_pin'; triesLeft: number } | { kind: 'forgotten' } | { kind: 'not_enrolled' };

export interface Enrollment {
  readonly payerId: string;
  readonly token: string;
  readonly secret: Uint8Array<ArrayBuffer>;
  readonly suite: string;
  readonly pin: string;
}

// ----------------------------------------------------------------------------- IndexedDB

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function openDb(): Promise<IDBDatabase> {
  const open = indexedDB.open(dbName, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(storeName);
  return request(open);
}

async function withStore<T>(mode: IDBTransactionMode, use: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    const tx = db.transaction(storeName, mode);
    const result = await request(use(tx.objectStore(storeName)));
    await new Promise<void>((resolve, reject) => {
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
    return result;
  } finally {
    db.close();
  }
}

const readRecord = () => withStore('readonly', (s) => s.get(recordKey) as IDBRequest<VaultRecord | undefined>);
const writeRecord = (record: VaultRecord) => withStore('readwrite', (s) => s.put(record, recordKey));

/** Erases the enrollment from this browser. */
export async function forget(): Promise<void> {
  await withStore('readwrite', (s) => s.delete(recordKey));
}

/** The enrolled payer id, or undefined; reads nothing secret. */
export async function enrolledPayer(): Promise<string | undefined> {
  const record = await readRecord();
  return record?.version === recordVersion ? record.payerId : undefined;
}

// ----------------------------------------------------------------------------- wrapping

function pinKey(pin: string, salt: Uint8Array<ArrayBuffer>, iterations: number): Promise<CryptoKey> {
  return crypto.subtle
    .importKey('raw', new TextEncoder().encode(pin), 'PBKDF2', false, ['deriveKey'])
    .then((base) =>
      crypto.subtle.deriveKey({ name: 'PBKDF2', hash: 'SHA-256', salt, iterations }, base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']),
    );
}

function associatedData(payerId: string, suite: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`countersign-web-terminal:v${recordVersion}:${payerId}:${suite}`);
}

/** Seals the secret and token under `pin` and stores them, replacing any earlier enrollment. */
export async function enroll(input: Enrollment): Promise<void> {
  if (input.pin.length < localPinLengthMin || input.pin.length > localPinLengthMax) throw new RangeError('local PIN length out of range');
  if (input.secret.length > 255) throw new RangeError('secret longer than 255 bytes');
  const salt = crypto.getRandomValues(new Uint8Array(saltBytes));
  const iv = crypto.getRandomValues(new Uint8Array(ivBytes));
  const token = new TextEncoder().encode(input.token);
  const plain = new Uint8Array(1 + input.secret.length + token.length);
  plain[0] = input.secret.length;
  plain.set(input.secret, 1);
  plain.set(token, 1 + input.secret.length);
  const key = await pinKey(input.pin, salt, pbkdf2Iterations);
  const sealed = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: associatedData(input.payerId, input.suite) }, key, plain);
  plain.fill(0);
  await writeRecord({ version: recordVersion, payerId: input.payerId, suite: input.suite, iterations: pbkdf2Iterations, salt, iv, sealed, failedUnlocks: 0 });
}

/** Opens the enrollment with `pin`. Sends nothing anywhere. */
export async function unlock(pin: string): Promise<UnlockResult> {
  const record = await readRecord();
  if (record === undefined || record.version !== recordVersion) return { kind: 'not_enrolled' };
  const key = await pinKey(pin, record.salt, record.iterations);
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(
      await crypto.subtle.decrypt({ name: 'AES-GCM', iv: record.iv, additionalData: associatedData(record.payerId, record.suite) }, key, record.sealed),
    );
  } catch {
    return wrongPin(record);
  }
  if (record.failedUnlocks !== 0) await writeRecord({ ...record, failedUnlocks: 0 });
  const secretLength = plain[0] ?? 0;
  const secret = plain.slice(1, 1 + secretLength);
  const token = new TextDecoder().decode(plain.slice(1 + secretLength));
  plain.fill(0);
  const hmacKey = await importOcraKey(secret, parseTerminalSuite(record.suite));
  secret.fill(0);
  return { kind: 'unlocked', session: { payerId: record.payerId, token, suite: record.suite, key: hmacKey } };
}

async function wrongPin(record: VaultRecord): Promise<UnlockResult> {
  const failedUnlocks = record.failedUnlocks + 1;
  if (failedUnlocks >= localPinAttemptsMax) {
    await forget();
    return { kind: 'forgotten' };
  }
  await writeRecord({ ...record, failedUnlocks });
  return { kind: 'wrong_pin', triesLeft: localPinAttemptsMax - failedUnlocks };
}

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pooledRandomBytes } from '../../ledger/random-pool.js';

/**
 * AES-256-GCM sealing of secrets at rest under a 32-byte master key.
 *
 * Sealed form: base64( version (1 byte, 0x01) | nonce (12, random: ledger/random-pool.ts) | ciphertext | tag (16) ). The version
 * byte is also authenticated (it is prepended to the AAD), so it cannot be swapped.
 *
 * Master key file: one line, the key in standard base64 (44 characters), mode 0600. Base64 rather
 * than raw so the same text works in `COUNTERSIGN_MASTER_KEY` and survives copy/paste backups.
 */

export const masterKeyBytes = 32;
export const nonceBytes = 12;
export const tagBytes = 16;
export const sealVersion = 0x01;
export const masterKeyEnvVar = 'COUNTERSIGN_MASTER_KEY';
export const keyFileMode = 0o600;
/** Permission bits that must be clear on a key file: any group or other access. */
const keyFileForbiddenBits = 0o077;

export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

export class MasterKeyError extends Error {
  override readonly name = 'MasterKeyError';
}

export function seal(masterKey: Buffer, plaintext: Buffer, aad: string): string {
  assertMasterKey(masterKey);
  const nonce = pooledRandomBytes(nonceBytes);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: tagBytes });
  cipher.setAAD(sealAad(aad));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const sealed = Buffer.concat([Buffer.of(sealVersion), nonce, ciphertext, cipher.getAuthTag()]);
  return sealed.toString('base64');
}

/** Opens a sealed secret; throws `SecretBoxError` (never with any plaintext) on any failure. */
export function open(masterKey: Buffer, sealedText: string, aad: string): Buffer {
  assertMasterKey(masterKey);
  const sealed = Buffer.from(sealedText, 'base64');
  if (sealed.length < 1 + nonceBytes + tagBytes || sealed[0] !== sealVersion) {
    throw new SecretBoxError('sealed secret is malformed or of an unknown version');
  }
  const nonce = sealed.subarray(1, 1 + nonceBytes);
  const ciphertext = sealed.subarray(1 + nonceBytes, sealed.length - tagBytes);
  const decipher = createDecipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: tagBytes });
  decipher.setAAD(sealAad(aad));
  decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new SecretBoxError('cannot open sealed secret: wrong key, wrong context or tampered');
  }
}

function sealAad(aad: string): Buffer {
  return Buffer.concat([Buffer.of(sealVersion), Buffer.from(aad, 'utf8')]);
}

function assertMasterKey(masterKey: Buffer): void {
  if (masterKey.length !== masterKeyBytes) throw new MasterKeyError(`master key must be ${masterKeyBytes} bytes`);
}

/** Decodes a base64 master key; throws `MasterKeyError` unless it is canonical base64 of 32 bytes. */
export function masterKeyFromBase64(text: string): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== masterKeyBytes || key.toString('base64') !== trimmed) {
    throw new MasterKeyError(`master key must be ${masterKeyBytes} bytes in standard base64`);
  }
  return key;
}

/** Reads `COUNTERSIGN_MASTER_KEY` from the given environment (pass `process.env` explicitly). */
export function masterKeyFromEnv(env: Readonly<Record<string, string | undefined>>): Buffer {
  const text = env[masterKeyEnvVar];
  if (text === undefined || text === '') throw new MasterKeyError(`${masterKeyEnvVar} is not set`);
  return masterKeyFromBase64(text);
}

/**
 * Loads the master key file, or creates it (32 random bytes, base64, mode 0600). Refuses a file
 * that group or others may access. Creation is atomic and never clobbers: the key is written and
 * fsynced in a 0600 temp file, then hard-linked into place (`link` fails if the name exists, unlike
 * `rename`, so two processes racing at first start both end up with the same key on disk).
 */
export function loadOrCreateMasterKey(keyPath: string): Buffer {
  if (!fs.existsSync(keyPath)) createKeyFile(keyPath);
  const mode = fs.statSync(keyPath).mode & 0o777;
  if ((mode & keyFileForbiddenBits) !== 0) {
    throw new MasterKeyError(
      `master key file ${keyPath} has mode ${mode.toString(8).padStart(4, '0')}; ` + `it must not be readable by group or others (chmod 600 ${keyPath})`,
    );
  }
  return masterKeyFromBase64(fs.readFileSync(keyPath, 'utf8'));
}

function createKeyFile(keyPath: string): void {
  const tempPath = path.join(path.dirname(keyPath), `.${path.basename(keyPath)}.${randomBytes(8).toString('hex')}.tmp`);
  const fd = fs.openSync(tempPath, 'wx', keyFileMode);
  try {
    fs.fchmodSync(fd, keyFileMode);
    fs.writeSync(fd, `${randomBytes(masterKeyBytes).toString('base64')}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tempPath, keyPath);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    fs.unlinkSync(tempPath);
  }
  syncDirectory(path.dirname(keyPath));
}

function syncDirectory(directory: string): void {
  const fd = fs.openSync(directory, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { rawPrivateKey } from './hpke.js';

/**
 * The bank's X25519 private key in a file: PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----", readable
 * by `openssl pkey`), mode 0600. Loaded when the file exists, created (exclusively) otherwise.
 * A file that group or others may read is refused, as ssh refuses such keys.
 */

export const keyFileMode = 0o600;
/** Largest key file read, bytes (a PEM X25519 key is about 120). */
export const keyFileBytesMax = 4096;

export function loadOrCreateKeyFile(path: string): { privateKey: Uint8Array; created: boolean } {
  const { privateKey } = generateKeyPairSync('x25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  try {
    writeFileSync(path, pem, { mode: keyFileMode, flag: 'wx' });
    return { privateKey: rawPrivateKey(privateKey), created: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST')
      throw new KeyFileError(`cannot create key file ${path}: ${(error as Error).message}`, { cause: error });
  }
  return { privateKey: loadKeyFile(path), created: false };
}

export function loadKeyFile(path: string): Uint8Array {
  const stat = statSync(path);
  if ((stat.mode & 0o077) !== 0) throw new KeyFileError(`key file ${path} is readable by group or others; chmod 600 it`);
  if (stat.size > keyFileBytesMax) throw new KeyFileError(`key file ${path} is larger than ${keyFileBytesMax} bytes`);
  let key: KeyObject;
  try {
    key = createPrivateKey(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new KeyFileError(`key file ${path} is not a PKCS#8 PEM private key`, { cause: error });
  }
  if (key.asymmetricKeyType !== 'x25519') throw new KeyFileError(`key file ${path} holds a ${key.asymmetricKeyType} key, not X25519`);
  return rawPrivateKey(key);
}

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

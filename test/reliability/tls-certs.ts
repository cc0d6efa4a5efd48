import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Throw-away PKI for TLS tests, made with the `openssl` CLI in a temp dir: two CAs, a server
 * certificate for 127.0.0.1/localhost issued by the first, and one client certificate from each.
 * EC P-256 keys, valid one day.
 */

export interface CertFiles {
  ca: string;
  key: string;
  cert: string;
}

export interface TestPki {
  dir: string;
  /** CA that issued the server certificate and the trusted client certificate. */
  ca: CertFiles;
  /** Another CA: its client certificate must be refused. */
  otherCa: CertFiles;
  server: CertFiles;
  client: CertFiles;
  otherClient: CertFiles;
  read(path: string): Buffer;
  remove(): void;
}

/** Each openssl run must finish within this, milliseconds. */
const opensslTimeoutMs = 20_000;

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: opensslTimeoutMs });
}

function newCa(dir: string, name: string): CertFiles {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  openssl(dir, [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '1',
    '-subj',
    `/CN=countersign test ${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { ca: cert, key, cert };
}

function issue(dir: string, ca: CertFiles, name: string, extensions: string): CertFiles {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${name}`]);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-out',
    cert,
    '-days',
    '1',
    '-extfile',
    ext,
  ]);
  return { ca: ca.cert, key, cert };
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'cs-tls-'));
  const ca = newCa(dir, 'ca');
  const otherCa = newCa(dir, 'other-ca');
  const server = issue(dir, ca, 'server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n');
  const clientExt = 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n';
  const client = issue(dir, ca, 'internal-caller', clientExt);
  const otherClient = issue(dir, otherCa, 'stranger', clientExt);
  return { dir, ca, otherCa, server, client, otherClient, read: (path) => readFileSync(path), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { assert } from '../../ledger/assert.js';

/**
 * The terminal's files, built once per process and served from memory: the static page and
 * style sheet, and the browser code bundled by esbuild (connect-web + the generated gen/ code +
 * @hpke/core and @hpke/dhkem-x25519 for the card envelope + services/web/client). Nothing is
 * written to disk, so there is no build output to commit.
 */

export interface Asset {
  readonly body: Buffer;
  readonly contentType: string;
}

/** Browsers the bundle targets (WebCrypto, IndexedDB, BigInt, fetch streaming). */
export const bundleTargets = ['chrome109', 'firefox115', 'safari16'];

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

async function bundle(): Promise<Buffer> {
  const result = await build({
    entryPoints: [here('./client/main.mts')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: bundleTargets,
    minify: true,
    legalComments: 'none',
    logLevel: 'silent',
    charset: 'utf8',
  });
  const out = result.outputFiles[0];
  assert(out !== undefined, 'esbuild produced a bundle');
  return Buffer.from(out.contents);
}

async function file(name: string, contentType: string): Promise<[string, Asset]> {
  return [`/${name}`, { body: await readFile(here(`./static/${name}`)), contentType }];
}

async function buildAssets(): Promise<ReadonlyMap<string, Asset>> {
  const [script, ...files] = await Promise.all([
    bundle(),
    file('index.html', 'text/html; charset=utf-8'),
    file('terminal.css', 'text/css; charset=utf-8'),
    file('icon.svg', 'image/svg+xml'),
  ]);
  const assets = new Map<string, Asset>([...files, ['/terminal.js', { body: script, contentType: 'text/javascript; charset=utf-8' }]]);
  assets.set('/', assets.get('/index.html')!);
  return assets;
}

let built: Promise<ReadonlyMap<string, Asset>> | undefined;

/** The assets by URL path ("/", "/terminal.js", ...); built on the first call of the process. */
export function terminalAssets(): Promise<ReadonlyMap<string, Asset>> {
  built ??= buildAssets().catch((error: unknown) => {
    built = undefined; // a failed build is retried by the next server start
    throw error;
  });
  return built;
}

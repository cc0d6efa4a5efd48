import * as http2 from 'node:http2';
import * as net from 'node:net';
import { gzipSync } from 'node:zlib';
import { Code } from '@connectrpc/connect';
import { codeLabel } from './security-rpc.js';

/**
 * Hostile bytes at the HTTP/2 level, from a raw `node:http2` client (no gRPC library between
 * the test and the server): bad length prefixes, a compressed flag without an encoding, a
 * truncated envelope, a message over the receive limit, garbage content types, garbage
 * protobuf, invalid UTF-8, too many or no messages, unknown methods, a reset mid-message, and
 * bytes that are not HTTP/2 at all. Each case states the answers that are precise for it;
 * INTERNAL or UNKNOWN, or no answer at all, is always a violation.
 */

/** One raw exchange's bound, milliseconds. */
export const frameCaseTimeoutMs = 10_000;
/** The servers' receive limit (grpc-host messageBytesMax). */
const receiveBytesMax = 4 * 1024 * 1024;

export interface RawAnswer {
  httpStatus: number | undefined;
  /** grpc-status from headers (trailers-only) or trailers; undefined when none came. */
  grpcStatus: number | undefined;
  grpcMessage: string;
  /** Connect protocol errors: the `code` of the JSON body. */
  connectCode: string | undefined;
  /** The stream or session failed before an answer (reset, GOAWAY, closed socket). */
  transportError: string | undefined;
  timedOut: boolean;
}

export interface FrameCase {
  name: string;
  /** gRPC over HTTP/2 (both ports speak it) or the Connect protocol (the Connect port only). */
  protocol: 'grpc' | 'connect';
  headers: Record<string, string>;
  /** Body chunks; `reset` sends RST_STREAM after them instead of ending the stream. */
  body: Buffer[];
  reset?: boolean;
  /** Precise answers: gRPC codes (0 = OK), HTTP statuses (`http:415`), `transport` (the server cut the stream), or Connect codes (`connect:invalid_argument`). */
  expect: string[];
}

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, payload. */
export function envelope(payload: Buffer, opts: { compressed?: boolean; declaredLength?: number } = {}): Buffer {
  const header = Buffer.alloc(5);
  header[0] = opts.compressed ? 1 : 0;
  header.writeUInt32BE(opts.declaredLength ?? payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** CheckBalancedRequest { currencies: [s] } with `s` given as raw bytes (field 1, wire type 2). */
function currenciesField(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x0a, bytes.length]), bytes]);
}

const checkBalancedPath = '/countersign.v1.LedgerService/CheckBalanced';
const getAccountPath = '/countersign.v1.LedgerService/GetAccount';

/** The cases, for one port; `key` is an operator key (so a well-formed request would be answered OK). */
export function frameCases(key: string, protocols: ('grpc' | 'connect')[]): FrameCase[] {
  const grpcHeaders = (path: string, extra: Record<string, string> = {}) => ({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${key}`,
    ...extra,
  });
  const grpc: FrameCase[] = [
    {
      name: 'well-formed CheckBalanced (control)',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.alloc(0))],
      expect: ['0'],
    },
    {
      name: 'length prefix larger than the body',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.from([0x0a, 0x03, 0x55]), { declaredLength: 100 })],
      expect: [String(Code.InvalidArgument), String(Code.Unimplemented), 'transport'],
    },
    {
      name: 'length prefix of 4 GiB',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.alloc(16), { declaredLength: 0xffff_ffff })],
      expect: [String(Code.ResourceExhausted), 'transport'],
    },
    {
      name: 'length prefix shorter than the body (trailing bytes)',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.alloc(10, 0x0a), { declaredLength: 2 })],
      expect: [String(Code.InvalidArgument), String(Code.Unimplemented), String(Code.ResourceExhausted), 'transport'],
    },
    {
      name: 'truncated envelope header (3 of 5 bytes)',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [Buffer.from([0, 0, 0])],
      expect: [String(Code.InvalidArgument), String(Code.Unimplemented), 'transport'],
    },
    {
      name: 'compressed flag without grpc-encoding',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.from([0x0a, 0x03, 0x55, 0x53, 0x44]), { compressed: true })],
      expect: ['0', String(Code.InvalidArgument), String(Code.Unimplemented)],
    },
    // gRPC's status code table: "could not decompress but compression algorithm supported" is
    // INTERNAL — what grpc-js answers before any handler or interceptor runs (the Connect port,
    // whose library we wrap, answers INVALID_ARGUMENT).
    {
      name: 'gzip encoding, payload not gzip',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { 'grpc-encoding': 'gzip' }),
      body: [envelope(Buffer.from('not gzip at all'), { compressed: true })],
      expect: [String(Code.InvalidArgument), String(Code.Internal)],
    },
    {
      name: 'gzip encoding, a gzip bomb over the limit',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { 'grpc-encoding': 'gzip' }),
      body: [envelope(gzipSync(Buffer.alloc(receiveBytesMax + 1024)), { compressed: true })],
      expect: [String(Code.ResourceExhausted), String(Code.InvalidArgument)],
    },
    {
      name: 'unsupported grpc-encoding (snappy)',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { 'grpc-encoding': 'snappy' }),
      body: [envelope(Buffer.from([1, 2, 3]), { compressed: true })],
      expect: [String(Code.Unimplemented)],
    },
    {
      name: 'message over the receive limit',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.alloc(receiveBytesMax + 1, 0))],
      expect: [String(Code.ResourceExhausted), 'transport'],
    },
    {
      name: 'content-type text/plain',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { 'content-type': 'text/plain' }),
      body: [envelope(Buffer.alloc(0))],
      expect: ['http:415'],
    },
    {
      name: 'content-type missing',
      protocol: 'grpc',
      headers: (({ 'content-type': _, ...h }) => h)(grpcHeaders(checkBalancedPath)),
      body: [envelope(Buffer.alloc(0))],
      expect: ['http:415'],
    },
    {
      name: 'content-type application/grpc+garbage',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { 'content-type': 'application/grpc+garbage' }),
      body: [envelope(Buffer.alloc(0))],
      expect: ['0', 'http:415', String(Code.InvalidArgument), String(Code.Unimplemented)],
    },
    {
      name: 'garbage protobuf bytes',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x07, 0x08]))],
      expect: [String(Code.InvalidArgument)],
    },
    {
      name: 'invalid UTF-8 in a string field',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(currenciesField(Buffer.from([0xc3, 0x28, 0xa0, 0xa1])))],
      expect: [String(Code.InvalidArgument)],
    },
    {
      name: 'a field number 0 (invalid tag)',
      protocol: 'grpc',
      headers: grpcHeaders(getAccountPath),
      body: [envelope(Buffer.from([0x02, 0x01, 0x41]))],
      expect: [String(Code.InvalidArgument)],
    },
    {
      name: 'two messages for a unary method',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.alloc(0)), envelope(Buffer.alloc(0))],
      expect: [String(Code.InvalidArgument), String(Code.Unimplemented)],
    },
    {
      name: 'no message for a unary method',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [],
      expect: [String(Code.InvalidArgument), String(Code.Unimplemented)],
    },
    {
      name: 'unknown method',
      protocol: 'grpc',
      headers: grpcHeaders('/countersign.v1.LedgerService/DropTables'),
      body: [envelope(Buffer.alloc(0))],
      expect: [String(Code.Unimplemented), 'http:404'],
    },
    {
      name: 'path without a method',
      protocol: 'grpc',
      headers: grpcHeaders('/'),
      body: [envelope(Buffer.alloc(0))],
      expect: [String(Code.Unimplemented), 'http:404'],
    },
    {
      name: 'grpc-timeout garbage',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { 'grpc-timeout': '99999999999H' }),
      body: [envelope(Buffer.alloc(0))],
      expect: ['0', String(Code.InvalidArgument)],
    },
    {
      name: 'GET instead of POST',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { ':method': 'GET' }),
      body: [],
      expect: ['http:405', String(Code.Unimplemented), String(Code.InvalidArgument)],
    },
    {
      name: 'authorization header of 40 KiB',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath, { authorization: `Bearer ${'a'.repeat(40 * 1024)}` }),
      body: [envelope(Buffer.alloc(0))],
      expect: [String(Code.Unauthenticated), 'transport', 'http:431'],
    },
    {
      name: 'reset after half a message',
      protocol: 'grpc',
      headers: grpcHeaders(checkBalancedPath),
      body: [envelope(Buffer.alloc(64), { declaredLength: 128 })],
      reset: true,
      expect: ['transport'],
    },
  ];
  const connectHeaders = (contentType: string) => ({
    ':method': 'POST',
    ':path': checkBalancedPath,
    'content-type': contentType,
    'connect-protocol-version': '1',
    authorization: `Bearer ${key}`,
  });
  const connect: FrameCase[] = [
    {
      name: 'Connect: well-formed JSON (control)',
      protocol: 'connect',
      headers: connectHeaders('application/json'),
      body: [Buffer.from('{}')],
      expect: ['http:200'],
    },
    {
      name: 'Connect: garbage protobuf body',
      protocol: 'connect',
      headers: connectHeaders('application/proto'),
      body: [Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f])],
      expect: ['connect:invalid_argument'],
    },
    {
      name: 'Connect: JSON that is not JSON',
      protocol: 'connect',
      headers: connectHeaders('application/json'),
      body: [Buffer.from('{"currencies": [')],
      expect: ['connect:invalid_argument'],
    },
    {
      name: 'Connect: JSON with a wrong field type',
      protocol: 'connect',
      headers: connectHeaders('application/json'),
      body: [Buffer.from('{"currencies": 7}')],
      expect: ['connect:invalid_argument'],
    },
    {
      name: 'Connect: body over the receive limit',
      protocol: 'connect',
      headers: connectHeaders('application/proto'),
      body: [Buffer.alloc(receiveBytesMax + 1)],
      expect: ['connect:resource_exhausted', 'transport'],
    },
    { name: 'Connect: content-type text/html', protocol: 'connect', headers: connectHeaders('text/html'), body: [Buffer.from('<html>')], expect: ['http:415'] },
    {
      name: 'Connect: unknown protocol version',
      protocol: 'connect',
      headers: { ...connectHeaders('application/json'), 'connect-protocol-version': '9' },
      body: [Buffer.from('{}')],
      expect: ['http:200', 'connect:invalid_argument', 'http:400'],
    },
    {
      name: 'Connect: content-encoding gzip, body not gzip',
      protocol: 'connect',
      headers: { ...connectHeaders('application/proto'), 'content-encoding': 'gzip' },
      body: [Buffer.from('plain')],
      expect: ['connect:invalid_argument'],
    },
    {
      name: 'Connect: content-encoding snappy (unsupported)',
      protocol: 'connect',
      headers: { ...connectHeaders('application/proto'), 'content-encoding': 'snappy' },
      body: [Buffer.from([1, 2, 3])],
      expect: ['connect:unimplemented'],
    },
  ];
  return [...(protocols.includes('grpc') ? grpc : []), ...(protocols.includes('connect') ? connect : [])];
}

/** Sends one case on a fresh HTTP/2 session and collects what came back, within `frameCaseTimeoutMs`. */
export function sendRaw(port: number, c: FrameCase): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const answer: RawAnswer = {
      httpStatus: undefined,
      grpcStatus: undefined,
      grpcMessage: '',
      connectCode: undefined,
      transportError: undefined,
      timedOut: false,
    };
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (c.protocol === 'connect' && answer.httpStatus !== undefined && answer.httpStatus !== 200) {
        try {
          answer.connectCode = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { code?: string }).code;
        } catch {
          answer.connectCode = undefined;
        }
      }
      session.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => ((answer.timedOut = true), finish()), frameCaseTimeoutMs);
    session.on('error', (e) => ((answer.transportError ??= e.message), finish()));
    const stream = session.request(c.headers, { endStream: false });
    const takeHeaders = (h: http2.IncomingHttpHeaders) => {
      if (h[':status'] !== undefined) answer.httpStatus = Number(h[':status']);
      if (h['grpc-status'] !== undefined) answer.grpcStatus = Number(h['grpc-status']);
      if (h['grpc-message'] !== undefined) answer.grpcMessage = decodeURIComponent(String(h['grpc-message']));
      // The status is the answer: a server may leave an upload it refused half-read (flow control), so do not wait for the close.
      if (c.protocol === 'grpc' && answer.grpcStatus !== undefined) setImmediate(finish);
    };
    stream.on('response', takeHeaders);
    stream.on('trailers', takeHeaders);
    stream.on('data', (d: Buffer) => void (chunks.length < 64 && chunks.push(d)));
    stream.on('error', (e) => (answer.transportError ??= e.message));
    stream.on('close', () => {
      if (
        stream.rstCode !== undefined &&
        stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR &&
        answer.grpcStatus === undefined &&
        answer.httpStatus === undefined
      )
        answer.transportError ??= `RST_STREAM ${stream.rstCode}`;
      finish();
    });
    for (const chunk of c.body) stream.write(chunk);
    if (c.reset) setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 20);
    else stream.end();
  });
}

/** What a case's answer was, as one of the `expect` vocabulary. */
export function answerLabel(a: RawAnswer, protocol: FrameCase['protocol']): string {
  if (a.timedOut) return 'timeout';
  if (protocol === 'connect' && a.httpStatus !== undefined && a.httpStatus !== 200 && a.connectCode !== undefined) return `connect:${a.connectCode}`;
  if (a.grpcStatus !== undefined && protocol === 'grpc') return String(a.grpcStatus);
  if (a.httpStatus !== undefined && (protocol === 'connect' || a.httpStatus !== 200)) return `http:${a.httpStatus}`;
  if (a.transportError !== undefined) return 'transport';
  return `http:${a.httpStatus ?? 'none'}`;
}

const label = (l: string): string => (/^\d+$/.test(l) ? codeLabel(Number(l) as Code) : l);

/** Violations of one case: never INTERNAL/UNKNOWN, never no answer, always one of the precise answers. */
export function judgeFrame(c: FrameCase, a: RawAnswer): string | undefined {
  const got = answerLabel(a, c.protocol);
  const detail = `${got === 'transport' ? a.transportError : label(got)}${a.grpcMessage ? ` "${a.grpcMessage.slice(0, 100)}"` : ''}`;
  if (c.expect.includes(got)) return undefined; // INTERNAL only where the gRPC protocol itself prescribes it
  if (got === String(Code.Internal) || got === String(Code.Unknown) || got === 'connect:internal' || got === 'connect:unknown')
    return `server error ${detail}, expected ${c.expect.map(label).join('|')}`;
  if (got === 'timeout') return `no answer within ${frameCaseTimeoutMs} ms`;
  return c.expect.includes(got) ? undefined : `${detail}, expected ${c.expect.map(label).join('|')}`;
}

/** A reproducer for a report: method, path, headers that matter, body bytes (long ones summarized). */
export function describeCase(c: FrameCase): string {
  const headers = Object.entries(c.headers)
    .filter(([k]) => k !== 'authorization' && k !== ':method' && k !== ':path' && k !== 'te')
    .map(([k, v]) => `${k}: ${v.length > 40 ? `<${v.length} chars>` : v}`);
  const body = c.body.map((b) => (b.length > 24 ? `<${b.length} bytes ${b.subarray(0, 8).toString('hex')}…>` : b.toString('hex') || '<empty>')).join(' + ');
  return `${c.headers[':method']} ${c.headers[':path']} [${headers.join('; ')}] body ${body || '<none>'}${c.reset ? ' then RST_STREAM' : ''}`;
}

/** Bytes that are not HTTP/2 on a raw TCP connection: the server must close it and keep serving. */
export function sendGarbageConnection(port: number): Promise<'closed' | 'timeout'> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => (socket.destroy(), resolve('timeout')), frameCaseTimeoutMs);
    socket.on('connect', () => socket.write(Buffer.concat([Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), Buffer.alloc(4096, 0xff)])));
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    socket.on('close', () => (clearTimeout(timer), resolve('closed')));
  });
}

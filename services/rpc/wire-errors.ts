import type * as http from 'node:http';
import type * as http2 from 'node:http2';

/**
 * connect-node answers a request body it cannot decode — bytes that are not the method's
 * protobuf message, or a compressed envelope without a usable encoding — with INTERNAL, before
 * any interceptor runs. The caller sent a malformed request: that is INVALID_ARGUMENT (the
 * grpc-js port already says so). This wraps the Node request handler and rewrites exactly
 * those answers, by their library messages, in the three protocols: the gRPC status in headers
 * (trailers-only) or trailers, and the Connect protocol's JSON error body. Anything else passes
 * through untouched.
 */

type Response = http.ServerResponse | http2.Http2ServerResponse;
type Handler = (req: http.IncomingMessage | http2.Http2ServerRequest, res: Response) => void;

const decodeFailure = /^(parse binary: |received compressed envelope, but do not know how to decompress|decompress: )/;
/** Connect error bodies are small JSON; a larger one is passed on as it is, bytes. */
const connectErrorBytesMax = 64 * 1024;

function isDecodeFailure(status: unknown, message: unknown): boolean {
  if (String(status) !== '13' || typeof message !== 'string') return false;
  try {
    return decodeFailure.test(decodeURIComponent(message));
  } catch {
    return false;
  }
}

/** gRPC and gRPC-Web: the status travels in headers (trailers-only) or trailers. */
function fixGrpcStatus(headers: Record<string, unknown> | undefined): void {
  if (headers !== undefined && isDecodeFailure(headers['grpc-status'], headers['grpc-message'])) headers['grpc-status'] = '3';
}

/** The Connect protocol's unary error body, rewritten when it reports a decode failure. */
function fixConnectBody(body: Buffer): { status: number; body: Buffer } | undefined {
  try {
    const error = JSON.parse(body.toString('utf8')) as { code?: unknown; message?: unknown };
    if (error.code !== 'internal' || typeof error.message !== 'string' || !decodeFailure.test(error.message)) return undefined;
    return { status: 400, body: Buffer.from(JSON.stringify({ ...error, code: 'invalid_argument' })) };
  } catch {
    return undefined;
  }
}

export function preciseDecodeErrors(handler: Handler): Handler {
  return (req, res) => {
    const r = res as http2.Http2ServerResponse & { writeHead: (...args: unknown[]) => unknown };
    const writeHead = r.writeHead.bind(r);
    const addTrailers = r.addTrailers.bind(r);
    const write = r.write.bind(r) as (chunk: unknown, ...rest: unknown[]) => boolean;
    const end = r.end.bind(r) as (...args: unknown[]) => unknown;
    let held: { status: number; headers: Record<string, unknown>; chunks: Buffer[]; bytes: number } | undefined;
    const release = (): void => {
      if (held === undefined) return;
      const body = Buffer.concat(held.chunks);
      const fixed = fixConnectBody(body);
      const headers = { ...held.headers, ...(fixed === undefined ? {} : { 'content-length': String(fixed.body.length) }) };
      writeHead(fixed?.status ?? held.status, headers);
      held = undefined;
      write(fixed?.body ?? body);
    };
    r.writeHead = ((status: unknown, ...rest: unknown[]) => {
      // connect-node calls writeHead again when headersSent is still false (held here): keep the first.
      if (held !== undefined) return r;
      const headers = (rest.find((x) => typeof x === 'object' && x !== null) ?? {}) as Record<string, unknown>;
      fixGrpcStatus(headers);
      const json = String(headers['content-type'] ?? '').startsWith('application/json');
      if (status === 500 && json) {
        held = { status, headers, chunks: [], bytes: 0 };
        return r;
      }
      return writeHead(status, headers);
    }) as typeof r.writeHead;
    r.addTrailers = (trailers: Record<string, unknown>) => {
      fixGrpcStatus(trailers);
      addTrailers(trailers as http.OutgoingHttpHeaders);
    };
    r.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (held === undefined) return write(chunk, ...rest);
      const bytes = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      held.chunks.push(bytes);
      held.bytes += bytes.length;
      const callback = rest.find((x) => typeof x === 'function') as (() => void) | undefined;
      if (held.bytes > connectErrorBytesMax) release();
      callback?.();
      return true;
    }) as typeof r.write;
    r.end = ((...args: unknown[]) => {
      const [first] = args;
      if (held !== undefined && (Buffer.isBuffer(first) || first instanceof Uint8Array || typeof first === 'string')) {
        held.chunks.push(Buffer.from(first as Uint8Array));
        args = args.slice(1);
      }
      release();
      return end(...args);
    }) as typeof r.end;
    handler(req, res);
  };
}

import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type { DescMessage } from '@bufbuild/protobuf';
import { Code, ConnectError, type ConnectRouter, createConnectRouter, createContextKey, createContextValues, type Interceptor } from '@connectrpc/connect';
import type { Compression, UniversalHandler, UniversalServerRequest } from '@connectrpc/connect/protocol';
import { parseContentType as connectContentType } from '@connectrpc/connect/protocol-connect';
import { parseContentType as grpcContentType } from '@connectrpc/connect/protocol-grpc';
import { parseContentType as grpcWebContentType } from '@connectrpc/connect/protocol-grpc-web';
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { Logger } from 'pino';
import { binaryInputProblem, jsonInputProblem } from './wire-strict.js';

/**
 * The Connect port's strict input (services/rpc/wire-strict.ts), in front of connect-node's
 * own decoding: connect hands the decompressed bytes straight to protobuf-es, with no hook in
 * between, so each method's handler is wrapped here. The wrapper reads the request body (one
 * message: the API has unary and server-streaming methods only), finds its format the way
 * connect does (gRPC, gRPC-Web and Connect content types, each protocol's compression header),
 * decompresses with the same codecs and limit, and checks every message. A sound body is
 * passed on as it came. A problem is answered INVALID_ARGUMENT naming the field, but only after
 * the interceptors (authentication first: a caller without a valid key learns nothing about its
 * input): the body is replaced by an empty message and the problem is thrown by the innermost
 * interceptor (`inputProblemInterceptor`), through connect's own error path, so each protocol
 * reports it its own way. What connect itself refuses (an unknown encoding, a body that does
 * not decompress, a truncated envelope, a body over its read limit) is left for it to answer.
 */

/** A request's input problem, filled in once its body has been read (the context value the interceptors see). */
interface InputCheck {
  problem: string | undefined;
}
const inputCheckKey = createContextKey<InputCheck | undefined>(undefined, { description: 'strict input check' });

/** The innermost interceptor: a request whose input failed the strict check ends here, INVALID_ARGUMENT. */
export const inputProblemInterceptor: Interceptor = (next) => (req) => {
  const problem = req.contextValues.get(inputCheckKey)?.problem;
  if (problem !== undefined) throw new ConnectError(problem, Code.InvalidArgument);
  return next(req);
};

/** Codecs for compressed requests: connect-node's defaults, given to the router too. */
export const acceptCompression: readonly Compression[] = [compressionGzip, compressionBrotli];
const compressionByName = new Map(acceptCompression.map((c) => [c.name, c]));

/** Bytes of a gRPC / Connect envelope's header: flags, then a 4-byte big-endian length. */
const envelopeHeaderBytes = 5;
const textDecoder = new TextDecoder();

interface BodyFormat {
  /** gRPC, gRPC-Web and Connect streaming bodies are enveloped; Connect unary is the bare message. */
  readonly enveloped: boolean;
  readonly binary: boolean;
  /** The request's compression (its protocol's header), undefined for identity. */
  readonly encoding: string | undefined;
}

function formatOf(header: Headers): BodyFormat | undefined {
  const contentType = header.get('content-type');
  const encoding = (name: string): string | undefined => {
    const value = header.get(name);
    return value === null || value === 'identity' ? undefined : value;
  };
  const grpc = grpcContentType(contentType);
  if (grpc !== undefined) return { enveloped: true, binary: grpc.binary, encoding: encoding('grpc-encoding') };
  const grpcWeb = grpcWebContentType(contentType);
  if (grpcWeb !== undefined && !grpcWeb.text) return { enveloped: true, binary: grpcWeb.binary, encoding: encoding('grpc-encoding') };
  const connect = connectContentType(contentType);
  if (connect !== undefined)
    return { enveloped: connect.stream, binary: connect.binary, encoding: encoding(connect.stream ? 'connect-content-encoding' : 'content-encoding') };
  return undefined;
}

function isByteStream(body: UniversalServerRequest['body']): body is AsyncIterable<Uint8Array> {
  return typeof body === 'object' && body !== null && Symbol.asyncIterator in body;
}

/** Decompressed bytes; undefined when they do not decompress (connect then answers with its own error). */
async function decompressed(compression: Compression, bytes: Uint8Array, readMaxBytes: number): Promise<Uint8Array | undefined> {
  try {
    return await compression.decompress(bytes, readMaxBytes);
  } catch {
    return undefined;
  }
}

function messageProblem(schema: DescMessage, bytes: Uint8Array, binary: boolean): string | undefined {
  return binary ? binaryInputProblem(schema, bytes) : jsonInputProblem(schema, textDecoder.decode(bytes));
}

async function bodyProblem(schema: DescMessage, body: Uint8Array, format: BodyFormat, readMaxBytes: number): Promise<string | undefined> {
  const compression = format.encoding === undefined ? undefined : compressionByName.get(format.encoding);
  if (format.encoding !== undefined && compression === undefined) return undefined; // connect: unsupported encoding
  if (!format.enveloped) {
    const message = compression === undefined ? body : await decompressed(compression, body, readMaxBytes);
    return message === undefined ? undefined : messageProblem(schema, message, format.binary);
  }
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  for (let pos = 0; pos + envelopeHeaderBytes <= body.byteLength; ) {
    const flags = body[pos]!;
    const start = pos + envelopeHeaderBytes;
    const stop = start + view.getUint32(pos + 1);
    if (stop > body.byteLength) return undefined; // truncated: connect refuses it
    let message: Uint8Array | undefined = body.subarray(start, stop);
    if (flags & 0b01) message = compression === undefined ? undefined : await decompressed(compression, message, readMaxBytes);
    if (message === undefined) return undefined;
    const problem = messageProblem(schema, message, format.binary);
    if (problem !== undefined) return problem;
    pos = stop;
  }
  return undefined;
}

/** A body that decodes to the empty message in `format` (it stands in for one that failed the check). */
async function emptyBody(format: BodyFormat): Promise<Uint8Array> {
  const message = format.binary ? new Uint8Array(0) : new TextEncoder().encode('{}');
  if (format.enveloped) {
    const envelope = new Uint8Array(envelopeHeaderBytes + message.byteLength); // flags 0: not compressed
    new DataView(envelope.buffer).setUint32(1, message.byteLength);
    envelope.set(message, envelopeHeaderBytes);
    return envelope;
  }
  const compression = format.encoding === undefined ? undefined : compressionByName.get(format.encoding);
  return compression === undefined ? message : compression.compress(message);
}

/**
 * The body as it came, once every message in it has been checked; on a problem, an empty
 * message, the problem kept for `inputProblemInterceptor`. A body over the read limit is passed
 * on unchecked: connect refuses it (RESOURCE_EXHAUSTED).
 */
async function* checkedBody(
  source: AsyncIterable<Uint8Array>,
  schema: DescMessage,
  format: BodyFormat,
  readMaxBytes: number,
  check: InputCheck,
): AsyncGenerator<Uint8Array> {
  // Past what connect reads for one message (its envelope header too), connect refuses the body itself.
  const bodyBytesMax = readMaxBytes + (format.enveloped ? envelopeHeaderBytes : 0);
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  const iterator = source[Symbol.asyncIterator]();
  for (let next = await iterator.next(); !next.done; next = await iterator.next()) {
    bytes += next.value.byteLength;
    chunks.push(next.value);
    if (bytes > bodyBytesMax) {
      yield* chunks;
      for (let rest = await iterator.next(); !rest.done; rest = await iterator.next()) yield rest.value;
      return;
    }
  }
  const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const problem = await bodyProblem(schema, body, format, readMaxBytes);
  if (problem === undefined) return yield* chunks;
  check.problem = problem;
  yield await emptyBody(format);
}

/** `handler` with its request messages checked first; `readMaxBytes` as given to the router. */
export function strictInput(handler: UniversalHandler, readMaxBytes: number): UniversalHandler {
  if (handler.allowedMethods.includes('GET')) {
    // Connect GET carries the message in the query string, which is not checked here.
    throw new Error(`assertion failed: ${handler.requestPath} accepts GET; strict input checks request bodies only`);
  }
  const schema = handler.method.input;
  const strict = (req: UniversalServerRequest) => {
    const format = req.method === 'POST' && isByteStream(req.body) ? formatOf(req.header) : undefined;
    if (format === undefined || !isByteStream(req.body)) return handler(req); // connect refuses it (405, 415)
    const check: InputCheck = { problem: undefined };
    const contextValues = (req.contextValues ?? createContextValues()).set(inputCheckKey, check);
    return handler({ ...req, contextValues, body: checkedBody(req.body, schema, format, readMaxBytes, check) });
  };
  return Object.assign(strict, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

type NodeRequest = http.IncomingMessage | http2.Http2ServerRequest;
type NodeResponse = http.ServerResponse | http2.Http2ServerResponse;

export interface StrictAdapterOptions {
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors: Interceptor[];
  /** Largest request message, bytes (connect's readMaxBytes). */
  readonly readMaxBytes: number;
  /** Where a handler's failure to write its answer is logged. */
  readonly logger: Pick<Logger, 'error'>;
  /** Requests for paths that are no RPC; 404 when undefined. */
  readonly fallback?: (req: NodeRequest, res: NodeResponse) => void;
}

/**
 * connect-node's `connectNodeAdapter` with every method's handler behind strict input: the
 * same router (gzip and brotli accepted), the same path matching, `fallback` (or 404) for other
 * paths.
 */
export function strictConnectNodeAdapter(opts: StrictAdapterOptions): (req: NodeRequest, res: NodeResponse) => void {
  const router = createConnectRouter({
    interceptors: [...opts.interceptors, inputProblemInterceptor],
    readMaxBytes: opts.readMaxBytes,
    acceptCompression: [...acceptCompression],
  });
  opts.routes(router);
  const paths = new Map(router.handlers.map((h) => [h.requestPath, strictInput(h, opts.readMaxBytes)]));
  const fallback =
    opts.fallback ??
    ((_req: NodeRequest, res: NodeResponse) => {
      res.writeHead(404);
      res.end();
    });
  return (req, res) => {
    const handler = paths.get((req.url ?? '').split('?', 1)[0] ?? '');
    if (handler === undefined) return fallback(req, res);
    handler(universalRequestFromNodeRequest(req, res, undefined, undefined))
      .then((response) => universalResponseToNodeResponse(response, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        opts.logger.error({ err: reason, method: `${handler.service.typeName}/${handler.method.name}` }, 'connect handler failed');
      });
  };
}

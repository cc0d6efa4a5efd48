import {
  create,
  type DescMessage,
  type DescMethod,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  fromBinary,
  isMessage,
  type Message,
  toBinary,
} from '@bufbuild/protobuf';
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  createContextValues,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
  type StreamResponse,
  type UnaryResponse,
} from '@connectrpc/connect';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { abortable } from './abort.js';
import { toConnectError } from './errors.js';
import { encodeMessage } from './fast-binary.js';
import { endStreamsOn, errorBoundary, methodName } from './interceptors.js';
import { grpcStatusDetailsBin } from './status-details.js';
import { binaryInputProblem } from './wire-strict.js';

/**
 * Serves a protobuf-es service implementation (the very `ServiceImpl` connect-node serves) on
 * a @grpc/grpc-js server: the ServiceDefinition is built from the descriptor, messages go
 * through protobuf-es `toBinary`/`fromBinary` (request bytes checked first by wire-strict.ts:
 * an out-of-range integer is INVALID_ARGUMENT naming the field), and each call runs the
 * connect interceptor chain around the implementation with a connect `HandlerContext`. Unary and server-streaming
 * methods only (the API has no others); registering any other kind is a programming error.
 */

type AnyFn = Parameters<Interceptor>[0];
type AnyRequest = Parameters<AnyFn>[0];
type HandlerContextController = HandlerContext & { abort(reason?: unknown): void };
type LooseImpl = (input: Message, context: HandlerContext) => unknown;

/** A decoded request, or why it could not be: grpc-js turns a throwing deserializer into INTERNAL. */
type Decoded = { readonly ok: true; readonly message: Message } | { readonly ok: false; readonly error: unknown };

export interface AddServiceOptions {
  /** Where unmapped errors go, with their stack (callers only ever see "internal error"). */
  readonly logger: Pick<Logger, 'error'>;
  /** Aborting it ends in-flight server streams with UNAVAILABLE (grpc-host's close). */
  readonly shutdownSignal?: AbortSignal;
}

interface MethodSpec {
  readonly method: DescMethod;
  /** The interceptors around the implementation, built once. */
  readonly chain: AnyFn;
  /** "/countersign.v1.PaymentService/CreatePayment", built once. */
  readonly path: string;
  readonly logger: Pick<Logger, 'error'>;
}

/**
 * Adds `service` to `server`. `interceptors` run in array order (first is outermost), as with
 * connect-node; an error boundary is always added outside them.
 */
export function addConnectService<S extends DescService>(
  server: grpc.Server,
  service: S,
  impl: ServiceImpl<S>,
  interceptors: readonly Interceptor[],
  opts: AddServiceOptions,
): void {
  const chainOf = [errorBoundary(opts.logger), ...(opts.shutdownSignal ? [endStreamsOn(opts.shutdownSignal)] : []), ...interceptors];
  const definition: Record<string, grpc.MethodDefinition<Decoded, Message>> = {};
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    const fn = (impl as Record<string, LooseImpl | undefined>)[method.localName];
    if (typeof fn !== 'function') throw new Error(`assertion failed: ${methodName({ method })} is not implemented`);
    const spec: MethodSpec = { method, chain: applyInterceptors(innermost(method, fn.bind(impl)), chainOf), path: methodPath(method), logger: opts.logger };
    definition[method.localName] = serverMethodDefinition(method);
    if (method.methodKind === 'unary') handlers[method.localName] = serveUnary(spec);
    else if (method.methodKind === 'server_streaming') handlers[method.localName] = serveServerStream(spec);
    else throw new Error(`assertion failed: ${methodName({ method })} is ${method.methodKind}; grpc-server serves unary and server streaming`);
  }
  server.addService(definition, handlers);
}

/** A grpc-js ServiceDefinition for clients (`makeGenericClientConstructor`), protobuf-es encoded. */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (m: Message) => toBuffer(toBinary(method.input, normalize(method.input, m))),
      requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
      responseSerialize: (m: Message) => toBuffer(toBinary(method.output, normalize(method.output, m))),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
      originalName: method.localName,
    };
  }
  return definition;
}

/** "/countersign.v1.PaymentService/CreatePayment" */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serverMethodDefinition(method: DescMethod): grpc.MethodDefinition<Decoded, Message> {
  return {
    path: methodPath(method),
    requestStream: false,
    responseStream: method.methodKind === 'server_streaming',
    requestSerialize: (d: Decoded) => toBuffer(d.ok ? toBinary(method.input, d.message) : new Uint8Array()),
    requestDeserialize: (bytes: Buffer): Decoded => {
      const problem = binaryInputProblem(method.input, bytes);
      if (problem !== undefined) return { ok: false, error: new ConnectError(problem, Code.InvalidArgument) };
      try {
        return { ok: true, message: fromBinary(method.input, bytes) };
      } catch (error) {
        return { ok: false, error };
      }
    },
    // protobuf-es's bytes, written by fast-binary.ts (several times faster than toBinary).
    responseSerialize: (m: Message) => toBuffer(encodeMessage(method.output, m)),
    responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    originalName: method.localName,
  };
}

// ----------------------------------------------------------------------------- the chain

function applyInterceptors(next: AnyFn, interceptors: readonly Interceptor[]): AnyFn {
  return interceptors.reduceRight<AnyFn>((inner, interceptor) => interceptor(inner), next);
}

/**
 * A request that failed decoding or the strict input check: its problem, thrown at the center
 * of the chain, after the interceptors (authentication first: a caller without a valid key
 * learns nothing about its input).
 */
const inputProblemKey = createContextKey<ConnectError | undefined>(undefined, { description: 'input problem' });

/** Where the center of the chain finds its call's context: the chain is built once per method. */
const callContextKey = createContextKey<CallContext | undefined>(undefined, { description: 'grpc-js call context' });

/** Runs one call through its method's chain. */
function runChain(spec: MethodSpec, context: CallContext, input: Message) {
  return spec.chain(requestOf(spec.method, context, input));
}

/** The center of the chain: calls the implementation like connect's invoke-implementation. */
function innermost(method: DescMethod, fn: LooseImpl): AnyFn {
  return async (req) => {
    const context = req.contextValues.get(callContextKey);
    if (context === undefined) throw new Error(`assertion failed: ${methodName({ method })} called without its call context`);
    const problem = req.contextValues.get(inputProblemKey);
    if (problem !== undefined) throw problem;
    // The call's own context unless an interceptor replaced the headers, the signal or the values
    // (an interceptor that replaced the signal has read the call's first, so an unread one is the call's own).
    const implContext: HandlerContext =
      req.header === context.requestHeader && (!context.signalMade || req.signal === context.signal) && req.contextValues === context.values
        ? context
        : replacedContext(context, req);
    if (method.methodKind === 'unary' && !req.stream) {
      const output = normalize(method.output, await fn(req.message, implContext));
      return new CallResponse(method.parent, output, method as DescMethodUnary, context) as UnaryResponse;
    }
    if (method.methodKind === 'server_streaming' && req.stream) {
      const input = await single(req.message);
      const output = normalizeIterable(method.output, fn(input, implContext) as AsyncIterable<Message>);
      return {
        service: method.parent,
        header: context.responseHeader,
        trailer: context.responseTrailer,
        stream: true,
        message: output,
        method: method as DescMethodServerStreaming,
      } satisfies StreamResponse;
    }
    throw new Error(`assertion failed: ${methodName({ method })} called as the wrong kind`);
  };
}

/**
 * The request object the chain sees, shaped as connect-node shapes it. Its `signal` is read
 * through to the call's context (a prototype getter: a call nobody asks never makes its
 * AbortController). A class, not an object literal with a getter: V8 builds such a literal
 * through the runtime, about 0.9 µs each against 0.01 µs, and leaves it in a slow shape.
 * An interceptor that spreads a request (`{ ...req, signal }`) copies every other field, which
 * are all its own; one that spreads it without giving a signal gets none (ours never do).
 */
class CallRequest {
  constructor(
    readonly service: DescService,
    readonly requestMethod: string,
    readonly url: string,
    readonly header: Headers,
    readonly contextValues: ContextValues,
    readonly stream: boolean,
    readonly message: unknown,
    readonly method: DescMethod,
    private readonly context: CallContext,
  ) {}

  get signal(): AbortSignal {
    return this.context.signal;
  }
}

function requestOf(method: DescMethod, context: CallContext, input: Message): AnyRequest {
  const { requestMethod, requestHeader: header, values: contextValues } = context;
  const service = method.parent;
  if (method.methodKind === 'unary')
    return new CallRequest(service, requestMethod, context.url, header, contextValues, false, input, method, context) as AnyRequest;
  if (method.methodKind === 'server_streaming')
    return new CallRequest(service, requestMethod, context.url, header, contextValues, true, once(input), method, context) as AnyRequest;
  throw new Error(`assertion failed: ${methodName({ method })} is ${method.methodKind}`);
}

/**
 * A unary answer whose header and trailer are read through to the call's context (made only
 * when read: CallContext.headerMade); a class for the same reason as CallRequest.
 */
class CallResponse {
  readonly stream = false;
  constructor(
    readonly service: DescService,
    readonly message: Message,
    readonly method: DescMethodUnary,
    private readonly context: CallContext,
  ) {}

  get header(): Headers {
    return this.context.responseHeader;
  }

  get trailer(): Headers {
    return this.context.responseTrailer;
  }
}

// ------------------------------------------------------------------------------ handlers

function serveUnary(spec: MethodSpec): grpc.handleUnaryCall<Decoded, Message> {
  return (call, callback) => {
    const context = handlerContext(call, spec.method, spec.path);
    void (async () => {
      try {
        const res = await runChain(spec, context, inputOf(call.request, spec.method, context));
        if (res.stream) throw new Error('assertion failed: a unary call answered with a stream');
        // A response an interceptor rebuilt by spreading has no header getter: the context's then.
        if (context.headerMade) sendHeader(call, res.header ?? context.responseHeader);
        callback(null, res.message, context.trailerMade ? headersToMetadata(res.trailer ?? context.responseTrailer) : undefined);
      } catch (error) {
        callback(grpcStatus(error, context, spec));
      } finally {
        context.abort();
      }
    })();
  };
}

function serveServerStream(spec: MethodSpec): grpc.handleServerStreamingCall<Decoded, Message> {
  return (call) => {
    const context = handlerContext(call, spec.method, spec.path);
    void (async () => {
      let headerSent = false;
      try {
        const res = await runChain(spec, context, inputOf(call.request, spec.method, context));
        if (!res.stream) throw new Error('assertion failed: a streaming call answered with one message');
        for await (const message of abortable(res.message, context.signal)) {
          if (!headerSent) headerSent = sendHeader(call, res.header);
          if (!call.write(message)) await drained(call, context.signal);
        }
        if (!headerSent) headerSent = sendHeader(call, res.header);
        call.end(headersToMetadata(res.trailer));
      } catch (error) {
        call.emit('error', grpcStatus(error, context, spec));
      } finally {
        context.abort();
      }
    })();
  };
}

/**
 * The reason a call's signal carries once its answer is sent: one shared error, so ending a call
 * captures no stack (`AbortController.abort()` without a reason builds a DOMException per call).
 */
const callEnded = new ConnectError('the call has ended', Code.Canceled);

/**
 * A connect HandlerContext for a grpc-js call: headers, deadline, cancel, context values. Built
 * here rather than by connect's `createHandlerContext`, which costs three AbortControllers,
 * three event listeners, a copy of the request headers and, when the call ends, a DOMException
 * and a ConnectError per call: on a hot path that was a tenth of a bare RPC's server CPU.
 *
 * The abort machinery is made only for a call that asks for it: `signal` creates its
 * AbortController on first read (an AbortController and its abort cost 4–7 µs per call here,
 * a tenth of a bare RPC), and most unary calls never read it. The signal aborts on the deadline
 * (DEADLINE_EXCEEDED), on the client's cancel (CANCELED) and when the call is over (`abort()`,
 * CANCELED). The client's deadline needs no timer of ours: grpc-js enforces it itself (it sends
 * DEADLINE_EXCEEDED and closes the stream) and then emits 'cancelled', which aborts the signal
 * with DEADLINE_EXCEEDED once the deadline has passed. A call without a client deadline gets the
 * server's default from the `deadline` interceptor, which reads this signal.
 */
class CallContext implements HandlerContextController {
  readonly protocolName = 'grpc';
  readonly requestMethod = 'POST';
  private header: Headers | undefined;
  private trailer: Headers | undefined;
  private controller: AbortController | undefined;
  private ended = false;

  constructor(
    private readonly call: grpc.ServerUnaryCall<Decoded, Message> | grpc.ServerWritableStream<Decoded, Message>,
    readonly method: DescMethod,
    private readonly path: string,
    readonly requestHeader: Headers,
    readonly values: ContextValues,
    /** Epoch milliseconds; Infinity without a client deadline. */
    private readonly deadlineMs: number,
  ) {}

  /** The response headers and trailers, made on first read: most calls send none of their own. */
  get responseHeader(): Headers {
    this.header ??= new Headers();
    return this.header;
  }

  get responseTrailer(): Headers {
    this.trailer ??= new Headers();
    return this.trailer;
  }

  /** Whether anyone read `responseHeader` (or a response's `header`, which reads it): until then there is nothing to send. */
  get headerMade(): boolean {
    return this.header !== undefined;
  }

  get trailerMade(): boolean {
    return this.trailer !== undefined;
  }

  get service(): DescService {
    return this.method.parent;
  }

  get url(): string {
    return `http://${this.call.getHost()}${this.path}`;
  }

  timeoutMs(): number | undefined {
    return Number.isFinite(this.deadlineMs) ? this.deadlineMs - Date.now() : undefined;
  }

  /** Whether anyone has read `signal` (until then the request's signal cannot have been replaced). */
  get signalMade(): boolean {
    return this.controller !== undefined;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      const controller = (this.controller = new AbortController());
      if (this.ended) controller.abort(callEnded);
      else if (this.call.cancelled) this.cancelled();
      // grpc-js emits 'cancelled' when every call's stream closes, answered or not.
      else this.call.once('cancelled', () => this.cancelled());
    }
    return this.controller.signal;
  }

  /** The stream closed: DEADLINE_EXCEEDED past the client's deadline, else the client's cancel; nothing once answered. */
  private cancelled(): void {
    if (this.ended || !this.call.cancelled || this.controller === undefined || this.controller.signal.aborted) return;
    this.controller.abort(
      Date.now() >= this.deadlineMs
        ? new ConnectError('the operation timed out', Code.DeadlineExceeded)
        : new ConnectError('cancelled by the client', Code.Canceled),
    );
  }

  abort(reason?: unknown): void {
    this.ended = true;
    if (this.controller !== undefined && !this.controller.signal.aborted) this.controller.abort(reason ?? callEnded);
  }
}

function handlerContext(
  call: grpc.ServerUnaryCall<Decoded, Message> | grpc.ServerWritableStream<Decoded, Message>,
  method: DescMethod,
  path: string,
): CallContext {
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  const requestHeader = metadataToHeaders(call.metadata);
  // grpc-js consumes grpc-timeout; restore it so interceptors see what connect-node shows them.
  if (Number.isFinite(deadlineMs)) requestHeader.set('grpc-timeout', grpcTimeout(Math.max(0, deadlineMs - Date.now())));
  const values = createContextValues();
  const context = new CallContext(call, method, path, requestHeader, values, deadlineMs);
  values.set(callContextKey, context);
  return context;
}

/** The call's context with the headers, signal and values an interceptor put into the request (the context's getters read, not spread). */
function replacedContext(context: CallContext, req: AnyRequest): HandlerContext {
  return {
    service: context.service,
    method: context.method,
    protocolName: context.protocolName,
    requestMethod: context.requestMethod,
    url: req.url,
    timeoutMs: () => context.timeoutMs(),
    signal: req.signal,
    requestHeader: req.header,
    responseHeader: context.responseHeader,
    responseTrailer: context.responseTrailer,
    values: req.contextValues,
  };
}

/** The decoded request; for one that failed, an empty message and its problem kept for the center of the chain. */
function inputOf(decoded: Decoded, method: DescMethod, context: CallContext): Message {
  if (decoded.ok) return decoded.message;
  // The strict check's answer names the field; a decoder's failure is reported as such.
  const problem =
    decoded.error instanceof ConnectError
      ? decoded.error
      : new ConnectError(`cannot decode ${method.input.typeName}`, Code.InvalidArgument, undefined, undefined, decoded.error);
  context.values.set(inputProblemKey, problem);
  return create(method.input);
}

/** The status grpc-js sends: same code number as connect's, its raw message, trailers, details. */
function grpcStatus(error: unknown, context: HandlerContext, spec: MethodSpec): grpc.ServerErrorResponse {
  const mapped = toConnectError(error);
  if (!(error instanceof ConnectError) && mapped.code === Code.Internal) {
    spec.logger.error({ err: error, method: methodName(spec) }, 'rpc failed with an unmapped error');
  }
  const metadata =
    context instanceof CallContext && !context.trailerMade ? headersToMetadata(mapped.metadata) : headersToMetadata(context.responseTrailer, mapped.metadata);
  const details = grpcStatusDetailsBin(mapped);
  if (details !== undefined) metadata.set('grpc-status-details-bin', toBuffer(details));
  return Object.assign(new Error(mapped.rawMessage), { code: mapped.code as number as grpc.status, details: mapped.rawMessage, metadata });
}

// ----------------------------------------------------------------------------- helpers

function sendHeader(call: Pick<grpc.ServerUnaryCall<Decoded, Message>, 'sendMetadata'>, header: Headers): true {
  const metadata = headersToMetadata(header);
  if (Object.keys(metadata.getMap()).length > 0) call.sendMetadata(metadata);
  return true;
}

function drained(call: grpc.ServerWritableStream<Decoded, Message>, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      call.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    call.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

/** grpc metadata → Headers; binary values base64 encoded, as they travel on the wire. */
export function metadataToHeaders(metadata: grpc.Metadata): Headers {
  const headers = new Headers();
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const value of values) {
      try {
        headers.append(key, typeof value === 'string' ? value : value.toString('base64'));
      } catch {
        // A value Headers refuses (control characters) is dropped, as an HTTP stack would.
      }
    }
  }
  return headers;
}

/** Headers → grpc metadata (later sources win); reserved and invalid entries are dropped. */
export function headersToMetadata(...sources: Headers[]): grpc.Metadata {
  const metadata = new grpc.Metadata();
  for (const headers of sources) {
    headers.forEach((value, key) => {
      if (reservedHeaders.has(key) || key.startsWith('grpc-')) return;
      try {
        metadata.set(key, key.endsWith('-bin') ? Buffer.from(value, 'base64') : value);
      } catch {
        // Not a valid metadata key or value: dropped.
      }
    });
  }
  return metadata;
}

const reservedHeaders = new Set(['content-type', 'te', 'user-agent', 'content-length', 'connection', 'host']);

function grpcTimeout(ms: number): string {
  const rounded = Math.ceil(ms);
  return rounded < 1e8 ? `${rounded}m` : `${Math.min(Math.ceil(rounded / 1000), 99_999_999)}S`;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function normalize(schema: DescMessage, value: unknown): Message {
  return isMessage(value, schema) ? value : create(schema, value as Record<string, unknown>);
}

async function* normalizeIterable(schema: DescMessage, source: AsyncIterable<unknown>): AsyncGenerator<Message> {
  for await (const value of source) yield normalize(schema, value);
}

async function* once<T>(value: T): AsyncGenerator<T> {
  yield value;
}

async function single<T>(source: AsyncIterable<T>): Promise<T> {
  for await (const value of source) return value;
  throw new ConnectError('missing request message', Code.InvalidArgument);
}

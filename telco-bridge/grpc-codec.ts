import { create, fromBinary, toBinary, type DescMethod, type DescService, type Message } from '@bufbuild/protobuf';
import type * as grpc from '@grpc/grpc-js';

/**
 * grpc-js method definitions for a protobuf-es service: messages go through `toBinary` /
 * `fromBinary`. Used for the bridge's own server and its authz client.
 */

/** "/countersign.v1.PayerService/ConfirmPayment" */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

const toBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** A ServiceDefinition for `grpc.makeGenericClientConstructor` and `server.addService`. */
export function grpcServiceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (m: Message) => toBuffer(toBinary(method.input, create(method.input, m as never))),
      requestDeserialize: (b: Buffer) => fromBinary(method.input, b),
      responseSerialize: (m: Message) => toBuffer(toBinary(method.output, create(method.output, m as never))),
      responseDeserialize: (b: Buffer) => fromBinary(method.output, b),
      originalName: method.localName,
    };
  }
  return definition;
}

import { create, createFileRegistry, type DescFile, type DescMessage, toBinary } from '@bufbuild/protobuf';
import {
  AnySchema,
  FileDescriptorProtoSchema,
  file_google_protobuf_any,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
} from '@bufbuild/protobuf/wkt';
import type { ConnectError } from '@connectrpc/connect';
import { fieldProto as field } from './descriptor-proto.js';

/**
 * `google.rpc.ErrorInfo` and `google.rpc.Status` (googleapis' error model), declared here
 * because protobuf-es ships only the well-known types. ErrorInfo carries a domain error's
 * machine-readable facts (reason, attempts left) to any gRPC or Connect client; Status is the
 * `grpc-status-details-bin` trailer that grpc-js servers must write by hand. Reflection serves
 * this file (grpc-host.ts), so a client that knows only what reflection tells it can decode
 * the details: the reason and `attempts_left`.
 */

const googleRpcFile = create(FileDescriptorProtoSchema, {
  name: 'google/rpc/countersign_status.proto',
  package: 'google.rpc',
  dependency: ['google/protobuf/any.proto'],
  syntax: 'proto3',
  messageType: [
    {
      name: 'ErrorInfo',
      field: [
        field('reason', 1, Type.STRING),
        field('domain', 2, Type.STRING),
        field('metadata', 3, Type.MESSAGE, { label: Label.REPEATED, typeName: '.google.rpc.ErrorInfo.MetadataEntry' }),
      ],
      nestedType: [
        {
          name: 'MetadataEntry',
          field: [field('key', 1, Type.STRING), field('value', 2, Type.STRING)],
          options: { mapEntry: true },
        },
      ],
    },
    {
      name: 'Status',
      field: [
        field('code', 1, Type.INT32),
        field('message', 2, Type.STRING),
        field('details', 3, Type.MESSAGE, { label: Label.REPEATED, typeName: '.google.protobuf.Any' }),
      ],
    },
  ],
});

const registry = createFileRegistry(googleRpcFile, (name) => (name === 'google/protobuf/any.proto' ? file_google_protobuf_any : undefined));

/** The file declaring both, with its import (google/protobuf/any.proto), for reflection. */
export const googleRpcDescFile: DescFile = fileOf(googleRpcFile.name);

function fileOf(name: string): DescFile {
  const file = registry.getFile(name);
  if (file === undefined) throw new Error(`assertion failed: ${name} not registered`);
  return file;
}

function message(typeName: string): DescMessage {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`assertion failed: ${typeName} not declared`);
  return desc;
}

/** `google.rpc.ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }` */
export const ErrorInfoSchema = message('google.rpc.ErrorInfo');
/** `google.rpc.Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }` */
export const StatusSchema = message('google.rpc.Status');

/** The domain named in every ErrorInfo this API sends. */
export const errorDomain = 'countersign.v1';

/** The value of the `grpc-status-details-bin` trailer for `error`, or undefined without details. */
export function grpcStatusDetailsBin(error: ConnectError): Uint8Array | undefined {
  if (error.details.length === 0) return undefined;
  const details = error.details.map((d) =>
    'desc' in d
      ? create(AnySchema, { typeUrl: `type.googleapis.com/${d.desc.typeName}`, value: toBinary(d.desc, create(d.desc, d.value)) })
      : create(AnySchema, { typeUrl: `type.googleapis.com/${d.type}`, value: d.value }),
  );
  return toBinary(StatusSchema, create(StatusSchema, { code: error.code, message: error.rawMessage, details }));
}

import { create, createFileRegistry, fromBinary, toBinary, type DescMessage, type Message } from '@bufbuild/protobuf';
import {
  anyPack,
  anyUnpack,
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  file_google_protobuf_any,
  FileDescriptorProtoSchema,
  type Any,
} from '@bufbuild/protobuf/wkt';

/**
 * `google.rpc.Status` and `google.rpc.ErrorInfo` (googleapis' error model) for reading the
 * `grpc-status-details-bin` trailer of authz errors (attempts left, reason). Declared here
 * because protobuf-es ships only the well-known types and the bridge imports nothing from
 * services/.
 */

const field = (name: string, number: number, type: Type, extra: object = {}) => ({
  name,
  number,
  type,
  label: Label.OPTIONAL,
  jsonName: name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()),
  ...extra,
});

const googleRpcFile = create(FileDescriptorProtoSchema, {
  name: 'google/rpc/telco_bridge_status.proto',
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
      nestedType: [{ name: 'MetadataEntry', field: [field('key', 1, Type.STRING), field('value', 2, Type.STRING)], options: { mapEntry: true } }],
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

function message(typeName: string): DescMessage {
  const desc = registry.getMessage(typeName);
  if (desc === undefined) throw new Error(`assertion failed: ${typeName} not declared`);
  return desc;
}

export const ErrorInfoSchema = message('google.rpc.ErrorInfo');
export const StatusSchema = message('google.rpc.Status');

export interface ErrorInfo {
  reason: string;
  domain: string;
  metadata: Record<string, string>;
}

type StatusShape = Message & { code: number; message: string; details: Any[] };

/** The ErrorInfo details in a `grpc-status-details-bin` value; [] when absent or undecodable. */
export function errorInfosOf(statusDetailsBin: Uint8Array | undefined): ErrorInfo[] {
  if (statusDetailsBin === undefined || statusDetailsBin.length === 0) return [];
  try {
    const status = fromBinary(StatusSchema, statusDetailsBin) as StatusShape;
    const infos: ErrorInfo[] = [];
    for (const any of status.details) {
      const info = anyUnpack(any, ErrorInfoSchema) as (Message & ErrorInfo) | undefined;
      if (info !== undefined) infos.push({ reason: info.reason, domain: info.domain, metadata: { ...info.metadata } });
    }
    return infos;
  } catch {
    return [];
  }
}

/** A `grpc-status-details-bin` value carrying one ErrorInfo (servers and test fakes write it). */
export function statusDetailsBin(code: number, text: string, info: ErrorInfo): Uint8Array {
  const detail = anyPack(ErrorInfoSchema, create(ErrorInfoSchema, info as never));
  return toBinary(StatusSchema, create(StatusSchema, { code, message: text, details: [detail] } as never));
}

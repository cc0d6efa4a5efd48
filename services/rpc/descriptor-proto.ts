import { FieldDescriptorProto_Label as Label, type FieldDescriptorProto_Type as Type } from '@bufbuild/protobuf/wkt';

/**
 * One field of a hand-declared FileDescriptorProto (status-details.ts, health-descriptor.ts),
 * as protoc writes it: optional unless `extra` says otherwise, with its lowerCamelCase
 * json_name.
 */
export function fieldProto(name: string, number: number, type: Type, extra: object = {}) {
  return {
    name,
    number,
    type,
    label: Label.OPTIONAL,
    jsonName: name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()),
    ...extra,
  };
}

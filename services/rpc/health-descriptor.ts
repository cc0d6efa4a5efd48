import { create, createFileRegistry, type DescFile } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema, FieldDescriptorProto_Label as Label, FieldDescriptorProto_Type as Type } from '@bufbuild/protobuf/wkt';
import { fieldProto as field } from './descriptor-proto.js';

/**
 * grpc/health/v1/health.proto, declared as protoc compiles it (the file grpc-health-check
 * ships and serves: Check, Watch and List), for server reflection. grpc-health-check's own
 * descriptor comes from proto-loader, which names the map entry of
 * `HealthListResponse.statuses` "Statuses" with map_entry set: protoc and Python's protobuf
 * refuse such a file ("map_entry should not be set explicitly"), so reflection clients built on
 * them could not load the health service. Here the entry is `StatusesEntry`, as protoc writes it.
 */

const healthFileProto = create(FileDescriptorProtoSchema, {
  name: 'grpc/health/v1/health.proto',
  package: 'grpc.health.v1',
  syntax: 'proto3',
  options: {
    csharpNamespace: 'Grpc.Health.V1',
    goPackage: 'google.golang.org/grpc/health/grpc_health_v1',
    javaMultipleFiles: true,
    javaOuterClassname: 'HealthProto',
    javaPackage: 'io.grpc.health.v1',
  },
  messageType: [
    { name: 'HealthListRequest' },
    {
      name: 'HealthListResponse',
      field: [field('statuses', 1, Type.MESSAGE, { label: Label.REPEATED, typeName: '.grpc.health.v1.HealthListResponse.StatusesEntry' })],
      nestedType: [
        {
          name: 'StatusesEntry',
          field: [field('key', 1, Type.STRING), field('value', 2, Type.MESSAGE, { typeName: '.grpc.health.v1.HealthCheckResponse' })],
          options: { mapEntry: true },
        },
      ],
    },
    { name: 'HealthCheckRequest', field: [field('service', 1, Type.STRING)] },
    {
      name: 'HealthCheckResponse',
      field: [field('status', 1, Type.ENUM, { typeName: '.grpc.health.v1.HealthCheckResponse.ServingStatus' })],
      enumType: [
        {
          name: 'ServingStatus',
          value: [
            { name: 'UNKNOWN', number: 0 },
            { name: 'SERVING', number: 1 },
            { name: 'NOT_SERVING', number: 2 },
            { name: 'SERVICE_UNKNOWN', number: 3 },
          ],
        },
      ],
    },
  ],
  service: [
    {
      name: 'Health',
      method: [
        { name: 'Check', inputType: '.grpc.health.v1.HealthCheckRequest', outputType: '.grpc.health.v1.HealthCheckResponse' },
        { name: 'Watch', inputType: '.grpc.health.v1.HealthCheckRequest', outputType: '.grpc.health.v1.HealthCheckResponse', serverStreaming: true },
        { name: 'List', inputType: '.grpc.health.v1.HealthListRequest', outputType: '.grpc.health.v1.HealthListResponse' },
      ],
    },
  ],
});

/** Built (and so checked) by protobuf-es when the module loads. */
export const healthDescFile: DescFile = (() => {
  const file = createFileRegistry(healthFileProto, () => undefined).getFile(healthFileProto.name);
  if (file === undefined) throw new Error(`assertion failed: ${healthFileProto.name} not registered`);
  return file;
})();

/** "grpc.health.v1.Health" */
export const healthServiceName = 'grpc.health.v1.Health';

"""A reflection-only gRPC client, as a Python tool would be: it knows no countersign .proto file.

Speaks grpc.reflection.v1.ServerReflection by hand (its few messages are declared below with
descriptor_pb2, since the grpcio-reflection package is not in Debian), lists the services, fetches
the file of every service and of each symbol named on the command line, with every dependency, and
builds them all into a fresh descriptor_pool.DescriptorPool: that is where Python's protobuf
refuses a malformed descriptor (a map entry not named <Field>Entry, an unresolved type).

With --status-details HEX, it then decodes those grpc-status-details-bin bytes with the reflected
google.rpc.Status and unpacks each google.protobuf.Any detail with the reflected type.

Usage: reflection_client.py HOST:PORT [--status-details HEX] SYMBOL...
Prints one line per result ("service NAME", "method NAME IN OUT", "message NAME", "file NAME",
"detail TYPE key=value ...") and exits 0; any failure is printed to stderr with exit status 1.
"""

import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# Bound on every reflection exchange, seconds.
DEADLINE_S = 10
# Bound on file_by_filename rounds for missing dependencies.
ROUNDS_MAX = 32

def reflection_messages():
    """The grpc.reflection.v1 messages this client uses, declared field by field."""
    f = descriptor_pb2.FileDescriptorProto(name="grpc/reflection/v1/reflection_by_hand.proto", package="grpc.reflection.v1", syntax="proto3")
    T = descriptor_pb2.FieldDescriptorProto
    def msg(name, fields, oneof=None):
        m = f.message_type.add(name=name)
        if oneof:
            m.oneof_decl.add(name=oneof)
        for (fname, number, ftype, label, type_name, in_oneof) in fields:
            fd = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                fd.type_name = type_name
            if in_oneof:
                fd.oneof_index = 0
    opt, rep = T.LABEL_OPTIONAL, T.LABEL_REPEATED
    msg("ServerReflectionRequest", [
        ("host", 1, T.TYPE_STRING, opt, None, False),
        ("file_by_filename", 3, T.TYPE_STRING, opt, None, True),
        ("file_containing_symbol", 4, T.TYPE_STRING, opt, None, True),
        ("list_services", 7, T.TYPE_STRING, opt, None, True),
    ], oneof="message_request")
    msg("FileDescriptorResponse", [("file_descriptor_proto", 1, T.TYPE_BYTES, rep, None, False)])
    msg("ServiceResponse", [("name", 1, T.TYPE_STRING, opt, None, False)])
    msg("ListServiceResponse", [("service", 1, T.TYPE_MESSAGE, rep, ".grpc.reflection.v1.ServiceResponse", False)])
    msg("ErrorResponse", [("error_code", 1, T.TYPE_INT32, opt, None, False), ("error_message", 2, T.TYPE_STRING, opt, None, False)])
    msg("ServerReflectionResponse", [
        ("valid_host", 1, T.TYPE_STRING, opt, None, False),
        ("original_request", 2, T.TYPE_MESSAGE, opt, ".grpc.reflection.v1.ServerReflectionRequest", False),
        ("file_descriptor_response", 4, T.TYPE_MESSAGE, opt, ".grpc.reflection.v1.FileDescriptorResponse", True),
        ("list_services_response", 6, T.TYPE_MESSAGE, opt, ".grpc.reflection.v1.ListServiceResponse", True),
        ("error_response", 7, T.TYPE_MESSAGE, opt, ".grpc.reflection.v1.ErrorResponse", True),
    ], oneof="message_response")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return message_class(pool, "grpc.reflection.v1.ServerReflectionRequest"), message_class(pool, "grpc.reflection.v1.ServerReflectionResponse")


def message_class(pool, name):
    desc = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


class Reflection:
    def __init__(self, target):
        self.channel = grpc.insecure_channel(target)
        self.request, response = reflection_messages()
        self.call = self.channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response.FromString,
        )

    def ask(self, **kwargs):
        responses = list(self.call(iter([self.request(**kwargs)]), timeout=DEADLINE_S))
        if len(responses) != 1:
            raise RuntimeError(f"{kwargs}: {len(responses)} responses, expected 1")
        r = responses[0]
        if r.WhichOneof("message_response") == "error_response":
            raise RuntimeError(f"{kwargs}: error {r.error_response.error_code} {r.error_response.error_message}")
        return r

    def files(self, **kwargs):
        return [descriptor_pb2.FileDescriptorProto.FromString(b) for b in self.ask(**kwargs).file_descriptor_response.file_descriptor_proto]


def build(pool, files, name, done, stack=()):
    """Adds `name` to the pool after its dependencies."""
    if name in done:
        return
    if name in stack:
        raise RuntimeError(f"import cycle through {name}")
    proto = files[name]
    for dep in proto.dependency:
        build(pool, files, dep, done, stack + (name,))
    pool.Add(proto)
    pool.FindFileByName(name)  # the C++ pool builds (and validates) here
    done.add(name)


def main(argv):
    target, rest = argv[1], argv[2:]
    details_hex = None
    if rest[:1] == ["--status-details"]:
        details_hex, rest = rest[1], rest[2:]
    reflection = Reflection(target)
    services = sorted(s.name for s in reflection.ask(list_services="*").list_services_response.service)
    files = {}
    for symbol in services + rest:
        for proto in reflection.files(file_containing_symbol=symbol):
            files.setdefault(proto.name, proto)
    for _ in range(ROUNDS_MAX):
        missing = sorted({dep for p in files.values() for dep in p.dependency if dep not in files})
        if not missing:
            break
        for name in missing:
            for proto in reflection.files(file_by_filename=name):
                files.setdefault(proto.name, proto)
    pool = descriptor_pool.DescriptorPool()
    done = set()
    for name in sorted(files):
        build(pool, files, name, done)
    for name in sorted(done):
        print(f"file {name}")
    for name in services:
        service = pool.FindServiceByName(name)
        print(f"service {service.full_name}")
        for method in service.methods:
            print(f"method {service.full_name}/{method.name} {method.input_type.full_name} {method.output_type.full_name}")
    for name in rest:
        print(f"message {pool.FindMessageTypeByName(name).full_name}")
    if details_hex is not None:
        status = message_class(pool, "google.rpc.Status").FromString(bytes.fromhex(details_hex))
        print(f"status code={status.code} message={status.message}")
        for any_detail in status.details:
            type_name = any_detail.type_url.split("/")[-1]
            detail = message_class(pool, type_name).FromString(any_detail.value)
            fields = " ".join(f"{k}={v}" for k, v in sorted(detail.metadata.items())) if hasattr(detail, "metadata") else ""
            print(f"detail {type_name} reason={getattr(detail, 'reason', '')} {fields}".rstrip())
    reflection.channel.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except Exception as error:  # noqa: BLE001 - every failure is the answer: print it, exit 1
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)

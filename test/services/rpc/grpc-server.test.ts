import { connectCaller, grpcJsCaller } from './callers.js';
import { registerSuite } from './suite.js';

// The grpc-js server, called by a grpc-js client and by connect-node's gRPC transport (interop).
registerSuite('grpc-js', [grpcJsCaller, (port) => connectCaller(port, 'grpc')]);

import { connectCaller, grpcJsCaller } from './callers.js';
import { registerSuite } from './suite.js';

// The connect-node server on h2c, called over Connect, gRPC-Web, and gRPC by a grpc-js client.
registerSuite('connect-node', [(port) => connectCaller(port, 'connect'), (port) => connectCaller(port, 'grpc-web'), grpcJsCaller]);

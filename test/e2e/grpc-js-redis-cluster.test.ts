import { registerScenarios } from './scenarios.js';

// A real 3-master Redis Cluster on loopback, reached from configuration (COUNTERSIGN_REDIS_CLUSTER).
registerScenarios('grpc-js', 'redis-cluster');

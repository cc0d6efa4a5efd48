import { registerScenarios } from './scenarios.js';

registerScenarios('grpc-js', 'memory');

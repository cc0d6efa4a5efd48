import { registerScenarios } from './scenarios.js';

// The embedded default: payments journaled in the environment's data directory.
registerScenarios('grpc-js', 'journal');

import { registerScenarios } from './scenarios.js';

registerScenarios('connect', 'redis');

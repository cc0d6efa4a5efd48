import { registerScenarios } from './scenarios.js';

registerScenarios('connect', 'memory');

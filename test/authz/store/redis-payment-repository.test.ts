import test from 'ava';
import { RedisPaymentRepository } from '../../../authz/store/redis-payment-repository.js';
import { startRedis, type RedisServer } from '../../support/redis.js';
import { paymentRepositoryContract } from './payment-repository.contract.js';

let started: Promise<RedisServer> | undefined;
const server = (): Promise<RedisServer> => (started ??= startRedis());

paymentRepositoryContract('redis payments', { open: async () => RedisPaymentRepository.open({ url: (await server()).url }) });

test.after.always('stop redis', async () => {
  if (started !== undefined) await (await started).stop();
});

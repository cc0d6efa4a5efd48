import test from 'ava';
import { RedisDirectory } from '../../../authz/store/redis-directory.js';
import { type RedisServer, startRedis } from '../../support/redis.js';
import { directoryContract } from './directory.contract.js';

let started: Promise<RedisServer> | undefined;
const server = (): Promise<RedisServer> => (started ??= startRedis());

directoryContract('redis directory', { open: async () => RedisDirectory.open({ url: (await server()).url }) });

test.after.always('stop redis', async () => {
  if (started !== undefined) await (await started).stop();
});

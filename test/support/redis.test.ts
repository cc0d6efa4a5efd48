import net from 'node:net';
import test from 'ava';
import { freePort, PortTakenError, startRedis } from './redis.js';

test('a redis-server that finds its port taken fails with PortTakenError (what the port retries look for); a free port starts', async (t) => {
  const port = await freePort();
  // The holder hangs up on whoever connects (the PINGs), so that closing it does not wait on them.
  const holder = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const error = await t.throwsAsync(startRedis({ port }), { instanceOf: PortTakenError });
  t.regex(error!.message, new RegExp(`port ${port}[\\s\\S]*Address already in use`));

  const server = await startRedis();
  t.teardown(() => server.stop());
  t.not(server.port, port);
  t.is(server.url, `redis://127.0.0.1:${server.port}`);
});

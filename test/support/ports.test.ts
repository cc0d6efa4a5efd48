import net from 'node:net';
import test from 'ava';
import { canListen, ephemeralPortLow, quietPort, quietPortAttemptsMax, serverPortsLow } from './ports.js';

test('quietPort: a listenable port below the source-port range, never one to avoid or one whose partner is taken', async (t) => {
  const low = ephemeralPortLow();
  t.true(low > serverPortsLow);
  const avoid = new Set<number>();
  for (let i = 0; i < 20; i++) {
    const port = await quietPort({ avoid });
    t.true(port >= serverPortsLow && port < low, `port ${port}`);
    t.false(avoid.has(port));
    t.true(await canListen(port));
    avoid.add(port);
  }
  // A partner that is never free: every attempt is thrown back, and the error says how many. Each
  // attempt draws a port (counted where it is checked against `avoid`); only the draws another
  // listener does not hold at that moment reach the partner's check, so that count may be lower.
  let drawn = 0;
  let asked = 0;
  const counting = { has: () => (drawn++, false) } as unknown as ReadonlySet<number>;
  const never = async () => (asked++, false);
  await t.throwsAsync(quietPort({ avoid: counting, alsoFree: never }), { message: new RegExp(`in ${quietPortAttemptsMax} attempts`) });
  t.is(drawn, quietPortAttemptsMax);
  t.true(asked > 0 && asked <= drawn, `${asked} partner checks of ${drawn} draws`);
});

test('quietPort: a range of one port held by a listener has nothing to give; an empty or privileged range is refused', async (t) => {
  const holder = net.createServer((socket) => socket.destroy());
  const port = await quietPort();
  await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  t.false(await canListen(port));
  await t.throwsAsync(quietPort({ low: port, high: port }), { message: `no free port in ${port}..${port} in ${quietPortAttemptsMax} attempts` });
  await t.throwsAsync(quietPort({ low: 30_000, high: 29_999 }), { instanceOf: RangeError });
  await t.throwsAsync(quietPort({ low: 80, high: 90 }), { instanceOf: RangeError });
});

import test from 'ava';
import { Cluster, Redis } from 'ioredis';
import { slotOf as clusterSlot, clusterSlots } from '../../authz/store/redis/slot.js';
import { clusterPorts, ephemeralPortLow } from './ports.js';
import { clusterBusPortOffset, startRedisCluster } from './redis-cluster.js';

/** Keys tried to find one per master (each lands on a given master with probability 1/3). */
const keyCandidatesMax = 200;

interface ClusterNodeLine {
  port: number;
  master: boolean;
  slots: [number, number][];
}

/** `CLUSTER NODES`: `<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>`. */
function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const fields = line.trim().split(' ');
      const port = Number(/:(\d+)@/.exec(fields[1]!)![1]);
      const slots = fields
        .slice(8)
        .filter((s) => !s.startsWith('['))
        .map((s): [number, number] => {
          const [from, to] = s.split('-').map(Number);
          return [from!, to ?? from!];
        });
      return { port, master: fields[2]!.split(',').includes('master'), slots };
    });
}

test('a 3-master Redis Cluster: keys on different masters, a script on hash-tagged keys, CROSSSLOT refused', async (t) => {
  // Measured: the cluster is ready 2.1–3.2 s after the call on an idle 2-core machine (5.4 s with
  // its cores loaded several times over); the whole test takes about as long.
  const startedAt = Date.now();
  const cluster = await startRedisCluster({ masters: 3 });
  const startMs = Date.now() - startedAt;
  t.teardown(() => cluster.stop());
  t.log(`cluster of 3 masters ready in ${startMs} ms`);
  t.is(cluster.nodes.length, 3);
  // Client and bus ports lie below the range the kernel hands out as source ports.
  const ephemeralLow = ephemeralPortLow();
  for (const { port } of cluster.nodes)
    t.true(port >= clusterPorts.low && port <= clusterPorts.high && port + clusterBusPortOffset < ephemeralLow, `port ${port}`);
  t.deepEqual(
    cluster.urls,
    cluster.nodes.map((n) => `redis://127.0.0.1:${n.port}`),
  );

  const client = new Cluster(cluster.nodes, { lazyConnect: true, maxRedirections: 4 });
  t.teardown(() => client.disconnect());
  await client.connect();
  const direct = cluster.nodes.map((n) => new Redis({ host: n.host, port: n.port, lazyConnect: true, maxRetriesPerRequest: 0 }));
  t.teardown(() => direct.forEach((r) => r.disconnect()));

  // Who serves which slots, as the cluster itself says; together they cover every slot once.
  const nodes = parseClusterNodes(String(await direct[0]!.call('CLUSTER', 'NODES')));
  t.deepEqual(nodes.map((n) => n.port).sort(), cluster.nodes.map((n) => n.port).sort());
  t.true(nodes.every((n) => n.master && n.slots.length > 0));
  t.is(
    nodes.reduce((sum, n) => sum + n.slots.reduce((s, [from, to]) => s + to - from + 1, 0), 0),
    clusterSlots,
  );
  const ownerOf = (slot: number) => nodes.find((n) => n.slots.some(([from, to]) => slot >= from && slot <= to))!.port;

  // One key per master: its slot from CLUSTER KEYSLOT (and our CRC16 agrees), its owner from CLUSTER NODES.
  const keyByPort = new Map<number, string>();
  for (let i = 0; keyByPort.size < nodes.length && i < keyCandidatesMax; i++) {
    const key = `cs-key-${i}`;
    const slot = Number(await client.call('CLUSTER', 'KEYSLOT', key));
    t.is(slot, clusterSlot(key));
    if (!keyByPort.has(ownerOf(slot))) keyByPort.set(ownerOf(slot), key);
  }
  t.is(keyByPort.size, 3, 'found a key for each of the 3 masters');
  for (const [port, key] of keyByPort) await client.set(key, `value on ${port}`);
  for (const [port, key] of keyByPort) {
    t.is(await client.get(key), `value on ${port}`);
    // The key really lives on that node: it answers, the others redirect.
    for (const [i, node] of cluster.nodes.entries()) {
      if (node.port === port) t.is(await direct[i]!.get(key), `value on ${port}`);
      else await t.throwsAsync(direct[i]!.get(key), { message: /^MOVED \d+ 127\.0\.0\.1:(\d+)/ });
    }
  }

  // A script may touch several keys when they share a slot (hash tag {t}) ...
  const script = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCRBY', KEYS[2], ARGV[2]); return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}";
  t.is(clusterSlot('{t}:a'), clusterSlot('{t}:b'));
  t.deepEqual(await client.eval(script, 2, '{t}:a', '{t}:b', 'x', '5'), ['x', '5']);
  t.deepEqual(await client.eval(script, 2, '{t}:a', '{t}:b', 'y', '2'), ['y', '7']);
  t.deepEqual(await client.mget('{t}:a', '{t}:b'), ['y', '7']);
  // ... and is refused when they do not: this is a cluster, not one server.
  const [a, b] = [...keyByPort.values()];
  t.not(clusterSlot(a!), clusterSlot(b!));
  await t.throwsAsync(direct[0]!.eval(script, 2, a!, b!, 'x', '1'), { message: /CROSSSLOT/ });
});

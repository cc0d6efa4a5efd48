import test from 'ava';
import { type TargetRow, targetLines, targetsOf, targetsTable } from '../../bench/targets.js';

const row = (scenario: TargetRow['scenario'], serverCpuMicrosPerUnit: number | undefined, extra: Partial<TargetRow> = {}): TargetRow => ({
  scenario,
  serverCpuMicrosPerUnit,
  redis: undefined,
  methods: [],
  ...extra,
});

test('targets from hand-computed inputs: ratios to the bare echo, Redis per batch auth, ConfirmPayment p99 strictly below 10 ms', (t) => {
  const rows = [
    row('echo', 130),
    row('bare', 100),
    row('unary', 350),
    row('unary-half', 900, {
      methods: [
        { method: 'CreatePayment', p99Ms: 3 },
        { method: 'ConfirmPayment', p99Ms: 10 },
      ],
    }),
    row('batch', 80, { redis: { commandsPerUnit: 16.5, cpuMicrosPerUnit: 35 } }),
  ];
  t.deepEqual(targetsOf({ rows, scenarios: ['echo', 'bare', 'unary', 'unary-half', 'batch'], store: 'redis' }), [
    { name: 'batch_server_us_per_auth', value: 80, limit: 80, met: true, note: null },
    { name: 'batch_redis_commands_per_auth', value: 16.5, limit: 16, met: false, note: null },
    { name: 'batch_redis_server_us_per_auth', value: 35, limit: 35, met: true, note: null },
    { name: 'unary_server_cpu_vs_bare_echo', value: 3.5, limit: 3.5, met: true, note: null },
    { name: 'echo_server_cpu_vs_bare_echo', value: 1.3, limit: 1.3, met: true, note: null },
    // 10 ms is not below 10 ms.
    { name: 'confirm_p99_half_load_ms', value: 10, limit: 10, met: false, note: null },
  ]);
});

test('targets whose inputs were not measured are null with the reason: no Redis, a scenario left out, the run stopped', (t) => {
  const rows = [row('echo', 150), row('unary', 700), row('batch', 250)];
  const targets = targetsOf({ rows, scenarios: ['echo', 'unary', 'unary-half', 'batch'], store: 'memory' });
  t.deepEqual(targets, [
    { name: 'batch_server_us_per_auth', value: 250, limit: 80, met: false, note: null },
    { name: 'batch_redis_commands_per_auth', value: null, limit: 16, met: null, note: 'store memory: no Redis in this run' },
    { name: 'batch_redis_server_us_per_auth', value: null, limit: 35, met: null, note: 'store memory: no Redis in this run' },
    { name: 'unary_server_cpu_vs_bare_echo', value: null, limit: 3.5, met: null, note: 'scenario bare not run (--scenarios)' },
    { name: 'echo_server_cpu_vs_bare_echo', value: null, limit: 1.3, met: null, note: 'scenario bare not run (--scenarios)' },
    { name: 'confirm_p99_half_load_ms', value: null, limit: 10, met: null, note: 'the run stopped before scenario unary-half' },
  ]);
  t.deepEqual(targetsTable(targets).slice(0, 4), [
    '| target | value | limit | met | basis |',
    '|---|--:|--:|---|---|',
    '| batch_server_us_per_auth | 250.00 | ≤ 80 | NO | batch: server CPU µs ÷ authorizations |',
    "| batch_redis_commands_per_auth | not measured (store memory: no Redis in this run) | ≤ 16 | — | batch on Redis: commands redis-server executed (the sweeper's left out) ÷ authorizations |",
  ]);
  t.is(targetLines(targets)[5], 'target confirm_p99_half_load_ms: not measured (the run stopped before scenario unary-half) (limit < 10): not measured');
});

test('a bare row with no CPU, a scenario that completed nothing and a half load without a ConfirmPayment are not measured', (t) => {
  const rows = [row('echo', undefined), row('bare', 0), row('unary', 400), row('unary-half', 900), row('batch', undefined)];
  const targets = targetsOf({ rows, scenarios: ['echo', 'bare', 'unary', 'unary-half', 'batch'], store: 'journal' });
  t.deepEqual(
    targets.map((x) => [x.name, x.value, x.met, x.note]),
    [
      ['batch_server_us_per_auth', null, null, 'scenario batch completed nothing'],
      ['batch_redis_commands_per_auth', null, null, 'store journal: no Redis in this run'],
      ['batch_redis_server_us_per_auth', null, null, 'store journal: no Redis in this run'],
      ['unary_server_cpu_vs_bare_echo', null, null, 'bare: server CPU measured 0'],
      ['echo_server_cpu_vs_bare_echo', null, null, 'scenario echo completed nothing'],
      ['confirm_p99_half_load_ms', null, null, 'unary-half: no ConfirmPayment completed'],
    ],
  );
});

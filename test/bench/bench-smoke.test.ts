import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import type { LoopStats } from '../../bench/stats.js';
import { type StorePerUnit, storeKinds } from '../../bench/store-counts.js';
import { startRedis } from '../support/redis.js';
import { tigerBeetleBinary } from '../support/tigerbeetle.js';

/**
 * `npm run bench` in its quickest form (20 payers, 1 s per scenario, small batches, 20 sequential
 * authorizations): every scenario runs on every store, every correctness check passes, and the
 * JSON and Markdown reports carry one row per scenario, the store round trips and the budgets.
 * Speed and counts are never asserted, only that they are there and are numbers: this machine's
 * numbers are for bench/README.md.
 */

const scenarios = ['echo', 'bare', 'unary-seq', 'unary', 'unary-half', 'batch', 'ledger'] as const;
const budgetNames = [
  'unary_store_round_trips_per_auth',
  'unary_redis_commands_per_auth',
  'unary_first_auth_store_round_trips',
  'unary_first_auth_redis_commands',
  'batch_store_round_trips_per_auth',
  'batch_redis_commands_per_auth',
];
const targets = [
  { name: 'batch_server_us_per_auth', limit: 80 },
  { name: 'batch_redis_commands_per_auth', limit: 16 },
  { name: 'batch_redis_server_us_per_auth', limit: 35 },
  { name: 'unary_server_cpu_vs_bare_echo', limit: 3.5 },
  { name: 'echo_server_cpu_vs_bare_echo', limit: 1.3 },
  { name: 'confirm_p99_half_load_ms', limit: 10 },
];
/** Authorizations the smoke run's unary-seq measures. */
const seqCount = 20;
/** The whole bench run, milliseconds: process start-up, setup, five scenarios and their checks. */
const benchRunMsMax = 100_000;

interface ReportRow {
  scenario: string;
  loops?: { server: LoopStats; client: LoopStats };
  store?: StorePerUnit;
  redis?: {
    commandsPerUnit: number;
    cpuMicrosPerUnit: number;
    commandMicrosPerUnit: number;
    scriptMicrosPerUnit: number;
    otherMicrosPerUnit: number;
    byCommand: Record<string, number>;
  };
  authorizations: number;
  rpcs: number;
  serverCpuMicrosPerUnit?: number;
  check: { ok: boolean; summary: string };
}
interface ReportFile {
  checksPassed: boolean;
  stopped: { scenario: string; error: string } | null;
  scenarios: ReportRow[];
  ratios: { name: string }[];
  budgets: { name: string; value: number | null; limit: number; met: boolean | null }[];
  targets: { name: string; value: number | null; limit: number; met: boolean | null; note: string | null }[];
}

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return runScript('bench/main.ts', args);
}

function runScript(file: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), benchRunMsMax);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const isCount = (n: unknown) => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/** The smallest run that still exercises every scenario: 20 payers, 2 merchants, 0.4 s windows, C = 4, B = 20. */
const smallRun = ['--payers', '20', '--merchants', '2', '--duration', '0.4', '--warmup', '0.1', '--concurrency', '4', '--batch', '20'];

for (const store of ['memory', 'journal', 'redis'] as const) {
  test.serial(`npm run bench --quick on ${store}: every scenario runs, every check passes, both reports are written`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-bench-smoke-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const { code, output } = await runBench([
      '--quick',
      '--store',
      store,
      ...smallRun,
      '--ledger-batch',
      '200',
      '--seq-count',
      String(seqCount),
      '--seq-warmup',
      '5',
      '--results-dir',
      dir,
      '--tag',
      'smoke',
      '--quiet',
    ]);
    t.is(code, 0, output);
    t.true(output.split('\n').includes(`written: ${join(dir, 'bench-smoke.md')}, ${join(dir, 'bench-smoke.json')}`), 'the run says where it wrote');

    const report = JSON.parse(readFileSync(join(dir, 'bench-smoke.json'), 'utf8')) as ReportFile;
    t.deepEqual(
      report.scenarios.map((r) => r.scenario),
      [...scenarios],
    );
    t.true(report.checksPassed, output);
    t.is(report.stopped, null, output);
    for (const row of report.scenarios) t.true(row.check.ok, `${row.scenario}: ${row.check.summary}`);
    const byName = new Map(report.scenarios.map((r) => [r.scenario, r]));
    t.true(byName.get('echo')!.rpcs > 0);
    // The bare grpc-js echo server: RPCs answered and its own CPU per RPC measured.
    const bare = byName.get('bare')!;
    t.true(bare.rpcs > 0, 'bare answered nothing');
    t.true(bare.serverCpuMicrosPerUnit! > 0 && Number.isFinite(bare.serverCpuMicrosPerUnit), `bare server CPU per RPC: ${bare.serverCpuMicrosPerUnit}`);
    t.is(bare.authorizations, 0);
    for (const name of ['unary', 'unary-half', 'batch'] as const) t.true(byName.get(name)!.authorizations > 0, `${name} authorized nothing`);
    t.is(byName.get('unary-seq')!.authorizations, seqCount, 'unary-seq authorizes exactly --seq-count, all SUCCEEDED');
    // Every load scenario reports its store traffic per authorization (numbers); on Redis its commands too.
    for (const row of report.scenarios.filter((r) => r.scenario !== 'ledger' && r.scenario !== 'bare')) {
      const s = row.store!;
      t.true(isCount(s.roundTripsPerUnit) && isCount(s.directoryReadsPerUnit), `${row.scenario}: ${JSON.stringify(s)}`);
      for (const kind of storeKinds) t.true(isCount(s.callsPerUnit[kind]), `${row.scenario}: ${kind}`);
      t.is(row.redis === undefined, store !== 'redis', `${row.scenario}: Redis commands only on Redis`);
      if (row.redis !== undefined) t.true(isCount(row.redis.commandsPerUnit));
    }
    if (store === 'redis') {
      // The batch's redis-server time split: its steps' commands run inside scripts, which have Lua of their own.
      const r = byName.get('batch')!.redis!;
      t.true(r.commandMicrosPerUnit > 0 && r.scriptMicrosPerUnit > 0 && r.otherMicrosPerUnit >= 0, `batch Redis split: ${JSON.stringify(r)}`);
    }
    t.deepEqual(
      report.targets.map((x) => ({ name: x.name, limit: x.limit })),
      targets,
    );
    for (const x of report.targets) {
      // Everything is measured in this run but Redis's figures off Redis; each null says why.
      const measured = store === 'redis' || !x.name.includes('redis');
      if (measured)
        t.true(typeof x.value === 'number' && Number.isFinite(x.value) && x.value > 0 && typeof x.met === 'boolean' && x.note === null, JSON.stringify(x));
      else t.deepEqual([x.value, x.met, x.note], [null, null, `store ${store}: no Redis in this run`]);
    }
    t.deepEqual(
      report.budgets.map((b) => b.name),
      budgetNames,
    );
    for (const b of report.budgets) {
      const measured = store === 'redis' || !b.name.includes('redis');
      t.is(b.value === null, !measured, `${b.name} on ${store}`);
      if (b.value !== null) t.true(isCount(b.value) && typeof b.met === 'boolean' && isCount(b.limit), JSON.stringify(b));
    }
    // Every load scenario says how both event loops fared (numbers, not NaN); the ledger row has none.
    for (const row of report.scenarios.filter((r) => r.scenario !== 'ledger')) {
      for (const loop of [row.loops!.server, row.loops!.client]) {
        for (const value of [loop.delayP99Ms, loop.delayMaxMs, loop.gcPauses, loop.gcPauseTotalMs, loop.gcPauseMaxMs])
          t.true(Number.isFinite(value) && value >= 0, `${row.scenario}: ${JSON.stringify(loop)}`);
        t.true(loop.delayMaxMs >= loop.delayP99Ms, `${row.scenario}: max below p99`);
      }
    }
    t.is(byName.get('ledger')!.loops, undefined);
    t.deepEqual(
      report.ratios.map((r) => r.name),
      ['unary vs echo', 'batch vs ledger', 'server CPU, unary', 'server CPU, batch', 'ConfirmPayment p99 at half load'],
    );

    const markdown = readFileSync(join(dir, 'bench-smoke.md'), 'utf8');
    if (store === 'redis') t.true(markdown.includes("| in commands | in scripts' own Lua | other (I/O, parsing) |"), 'the Redis table shows the split');
    for (const prefix of [
      '| echo (',
      '| bare (',
      '| target | value | limit | met |',
      '| unary_server_cpu_vs_bare_echo | ',
      '| unary-seq (',
      '| unary (',
      '| unary-half (',
      '| batch (',
      '| ledger (',
      '| budget | value | limit | met |',
      '| unary_store_round_trips_per_auth |',
    ])
      t.true(markdown.includes(prefix), `${prefix} row missing`);
    for (const scenario of ['echo', 'unary-seq', 'unary', 'unary-half', 'batch'])
      t.regex(markdown, new RegExp(`^\\| ${scenario} \\| \\d+\\.\\d{3} \\|`, 'm'), `store row ${scenario} missing`);
    t.regex(output, /^budget unary_store_round_trips_per_auth: \d+\.\d{2} \(limit 3\): (met|NOT met)$/m);
    if (store !== 'redis') t.true(markdown.includes('| batch_redis_commands_per_auth | not measured (store '), 'not measured, with why');
    for (const scenario of ['echo', 'bare', 'unary-seq', 'unary', 'unary-half', 'batch']) {
      for (const who of ['server', 'generator']) t.true(markdown.includes(`| ${scenario} | ${who} | `), `loop row ${scenario}/${who} missing`);
    }
    t.false(markdown.includes('FAILED'));
  });
}

for (const [store, unary] of [
  ['memory', undefined],
  ['redis', undefined],
  ['memory', 5],
  ['redis', 5],
] as const) {
  const mode = unary === undefined ? 'batch' : `unary, ${unary} loops`;
  test.serial(`bench/core.ts on ${store}, ${mode}: every counted authorization of the core succeeds, CPU per authorization reported`, async (t) => {
    const redis = store === 'redis' ? await startRedis() : undefined;
    t.teardown(() => redis?.stop());
    const url = redis === undefined ? [] : ['--redis-url', `redis://127.0.0.1:${redis.port}`];
    const loops = unary === undefined ? [] : ['--unary', String(unary)];
    const { code, output } = await runScript('bench/core.ts', ['--batches', '3', '--warmup', '1', '--batch', '40', '--payers', '7', ...url, ...loops]);
    t.is(code, 0, output);
    const report = JSON.parse(output) as {
      store: string;
      mode: string;
      authorizations: number;
      succeeded: number;
      cpuMicrosPerAuth: number;
      storeClientMicrosPerAuth?: { create: number; confirm: number; commit: number; total: number };
    };
    t.deepEqual([report.store, report.mode, report.authorizations, report.succeeded], [store, mode, 80, 80]);
    t.true(isCount(report.cpuMicrosPerAuth) && report.cpuMicrosPerAuth > 0);
    const steps = report.storeClientMicrosPerAuth;
    if (store === 'memory' || unary !== undefined) t.is(steps, undefined, 'the store-client figure is the Redis store’s, batches only');
    else {
      t.true(steps !== undefined && steps.create > 0 && steps.confirm > 0 && steps.commit > 0, JSON.stringify(steps));
      // Each part rounded to 0.1 µs: the total within their rounding, and inside the whole.
      t.true(Math.abs(steps!.total - (steps!.create + steps!.confirm + steps!.commit)) <= 0.2);
      t.true(steps!.total <= report.cpuMicrosPerAuth, `${steps!.total} µs in the store calls of ${report.cpuMicrosPerAuth} µs per authorization`);
    }
  });
}

test.serial(
  'bench/core.ts --capture then bench/lua-replay.ts: the step calls of one batch, replayed on a private Redis, create, satisfy and settle every item',
  async (t) => {
    const redis = await startRedis();
    t.teardown(() => redis.stop());
    const dir = mkdtempSync(join(tmpdir(), 'cs-capture-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const core = await runScript('bench/core.ts', [
      '--batches',
      '2',
      '--warmup',
      '1',
      '--batch',
      '30',
      '--payers',
      '7',
      '--redis-url',
      `redis://127.0.0.1:${redis.port}`,
      '--capture',
      dir,
    ]);
    t.is(core.code, 0, core.output);
    t.deepEqual(readdirSync(dir).sort(), ['01-createAll.resp', '02-confirm.resp', '03-commit.resp']);
    const confirm = readFileSync(join(dir, '02-confirm.resp')).toString('latin1');
    t.regex(confirm, /^\*\d+\r\n\$7\r\nEVALSHA\r\n\$40\r\n[0-9a-f]{40}\r\n/, 'the call as sent: an EVALSHA in RESP');
    const replay = await runScript('bench/lua-replay.ts', ['--capture', dir, '--rounds', '2', '--tree', '.', '--tree', '.']);
    t.is(replay.code, 0, replay.output);
    const json = JSON.parse(replay.output.trim().split('\n').at(-1)!) as {
      rounds: number;
      perItem: Record<
        string,
        Record<string, { items: number; callUs: number; commandUs: number; scriptOwnUs: number; cpuUs: number; outcomes: Record<string, number> }>
      >;
    };
    t.is(json.rounds, 2);
    const steps = json.perItem['.']!;
    t.deepEqual(Object.fromEntries(Object.entries(steps).map(([step, s]) => [step, s.outcomes])), {
      createAll: { created: 30 },
      confirm: { satisfied: 30 },
      commit: { settled: 30 },
    });
    for (const [step, s] of Object.entries(steps)) {
      t.is(s.items, 30, step);
      t.true(s.callUs > 0 && s.commandUs > 0 && s.cpuUs > 0, `${step}: ${JSON.stringify(s)}`);
      t.true(s.commandUs < s.callUs && s.scriptOwnUs > 0, `${step}: the commands ran inside the call, which took longer: ${JSON.stringify(s)}`);
    }
    const created = await runScript('bench/lua-replay.ts', ['--capture', dir, '--rounds', '1', '--until', 'createAll']);
    t.is(created.code, 0, created.output);
    t.deepEqual(
      Object.keys((JSON.parse(created.output.trim().split('\n').at(-1)!) as { perItem: Record<string, object> }).perItem['.']!),
      ['createAll'],
      '--until: that step only',
    );
    // Two rows per step (the same tree twice): the second with its paired difference from the first.
    t.regex(replay.output, /^\| confirm \| \. \| 30 \| [\d.]+ \| — \| [\d.]+ \| -?[\d.]+ \| [\d.]+ \| satisfied 30 \|$/m);
    t.regex(replay.output, /^\| confirm \| \. \| 30 \| [\d.]+ \| [+-][\d.]+ \| [\d.]+ \| -?[\d.]+ \| [\d.]+ \| satisfied 30 \|$/m);
  },
);

test('bench/core.ts and bench/lua-replay.ts: --help, and refusals in one line with exit 2', async (t) => {
  const help = await runScript('bench/core.ts', ['--help']);
  t.is(help.code, 0);
  t.true(help.output.startsWith('npx tsx bench/core.ts [options]') && help.output.includes('--capture DIR'), help.output);
  const capture = await runScript('bench/core.ts', ['--capture', '/nonexistent/x']);
  t.is(capture.code, 2);
  t.is(capture.output, "bench/core: --capture needs --redis-url and batches (not --unary): it saves the Redis step scripts' calls of a batch\n");
  const noDir = await runScript('bench/lua-replay.ts', []);
  t.is(noDir.code, 2);
  t.is(noDir.output, 'bench/lua-replay: --capture DIR is required (the calls bench/core.ts --capture saved)\n');
  const until = await runScript('bench/lua-replay.ts', ['--capture', '.', '--until', 'settle']);
  t.is(until.output, 'bench/lua-replay: --until must be one of createAll, confirm, commit\n');
  const rounds = await runScript('bench/lua-replay.ts', ['--capture', '.', '--rounds', '1001']);
  t.is(rounds.output, 'bench/lua-replay: --rounds must be an integer from 1 to 1000\n');
  const empty = mkdtempSync(join(tmpdir(), 'cs-capture-'));
  t.teardown(() => rmSync(empty, { recursive: true, force: true }));
  const none = await runScript('bench/lua-replay.ts', ['--capture', empty]);
  t.is(none.output, `bench/lua-replay: --capture ${empty}: no NN-<script>.resp files\n`);
  const replayHelp = await runScript('bench/lua-replay.ts', ['--help']);
  t.is(replayHelp.code, 0);
  t.true(replayHelp.output.startsWith('npx tsx bench/lua-replay.ts --capture DIR') && replayHelp.output.includes('--tree PATH'), replayHelp.output);
});

test('bench/core.ts refuses a bad bound: one line, exit 2', async (t) => {
  const { code, output } = await runScript('bench/core.ts', ['--batch', '1001']);
  t.is(code, 2);
  t.is(output, 'bench/core: --batches, --warmup, --batch (≤ 1000) and --payers must be positive integers, --warmup below --batches\n');
  const loops = await runScript('bench/core.ts', ['--unary', '1001']);
  t.is(loops.code, 2);
  t.is(loops.output, 'bench/core: --unary must be an integer from 1 to 1000\n');
});

test('npm run bench --workers 2 refuses a store or ledger one process owns: one line, exit 2, nothing started', async (t) => {
  const memory = await runBench(['--quick', '--workers', '2']);
  t.is(memory.code, 2, memory.output);
  t.is(
    memory.output,
    'bench: --workers 2 needs the payment store in Redis (--store redis; the memory store belongs to one process) and the ledger in TigerBeetle (--ledger tigerbeetle; the embedded ledger belongs to one process)\n',
  );
  const embedded = await runBench(['--quick', '--workers=3', '--store', 'redis']);
  t.is(embedded.code, 2, embedded.output);
  t.is(embedded.output, 'bench: --workers 3 needs the ledger in TigerBeetle (--ledger tigerbeetle; the embedded ledger belongs to one process)\n');
  const bad = await runBench(['--quick', '--workers', '0', '--store', 'redis', '--ledger', 'tigerbeetle']);
  t.is(bad.code, 2, bad.output);
  t.is(bad.output, 'bench: --workers must be 1 to 64, got "0"\n');
});

/** TigerBeetle for `--ledger tigerbeetle`: TB_ADDRESS, or a binary the bench starts a private replica from; else the case is skipped, saying why. */
const tigerBeetleHere = (process.env.TB_ADDRESS ?? '') !== '' || tigerBeetleBinary() !== undefined;
/**
 * A private replica whenever a binary is here (`--tb-addresses=` overrides TB_ADDRESS): the
 * bench's check compares the platform accounts (fees, funding: one pair per currency on a ledger)
 * with their baseline, and the TB_ADDRESS cluster of `npm run test:all` is shared with the
 * TigerBeetle tests running beside this one — in one CI run their deposits and fees moved those
 * accounts during the bench ("ledger unbalanced, 1 platform accounts wrong"). Only without a
 * binary does the case use TB_ADDRESS, and then it may meet that.
 */
const privateTigerBeetle = tigerBeetleBinary() !== undefined ? ['--tb-addresses='] : [];
const noTigerBeetle = 'npm run bench --workers 2 skipped: no TB_ADDRESS and no TigerBeetle binary (TB_BIN, or ../shared/tigerbeetle/tigerbeetle)';
if (!tigerBeetleHere) console.log(noTigerBeetle);

(tigerBeetleHere ? test.serial : test.skip)(
  'npm run bench --quick --workers 2 on Redis and TigerBeetle: both workers serve, CPU is summed, the check in worker 1 counts every answered authorization',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-bench-workers-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const { code, output } = await runBench([
      '--quick',
      '--workers',
      '2',
      '--store',
      'redis',
      '--ledger',
      'tigerbeetle',
      ...privateTigerBeetle,
      '--scenarios',
      'echo,unary-seq,unary,batch',
      ...smallRun,
      '--seq-count',
      '10',
      '--seq-warmup',
      '2',
      '--results-dir',
      dir,
      '--quiet',
    ]);
    t.is(code, 0, output);
    // Without --tag the file names say the worker count, so one server's results are not overwritten.
    const report = JSON.parse(readFileSync(join(dir, 'bench-redis-tigerbeetle-workers2.json'), 'utf8')) as ReportFile & {
      options: { workers: number };
      server: { describe: string[] };
      scenarios: (ReportRow & { check: { detail: { succeeded: number; answeredSucceeded?: number } } })[];
    };
    t.is(report.options.workers, 2);
    t.is(report.server.describe[0], '2 worker processes (node:cluster, as countersign serve --workers 2)');
    t.true(report.checksPassed, output);
    t.deepEqual(
      report.scenarios.map((r) => r.scenario),
      ['echo', 'unary-seq', 'unary', 'batch'],
    );
    for (const row of report.scenarios) {
      t.true(row.check.ok, `${row.scenario}: ${row.check.summary}`);
      // The check ran in worker 1 and saw every payment the generator was answered SUCCEEDED, whichever worker answered.
      const { succeeded, answeredSucceeded } = row.check.detail;
      t.true(
        typeof answeredSucceeded === 'number' && answeredSucceeded > 0 && succeeded >= answeredSucceeded,
        `${row.scenario}: ${JSON.stringify(row.check.detail)}`,
      );
      t.true(row.serverCpuMicrosPerUnit! > 0 && Number.isFinite(row.serverCpuMicrosPerUnit), `${row.scenario}: ${row.serverCpuMicrosPerUnit}`);
    }
    t.is(report.scenarios.find((r) => r.scenario === 'unary-seq')!.authorizations, 10);
    // Each worker's share of the server CPU per scenario: the generator's connections reach both.
    for (const scenario of ['unary', 'batch']) {
      const split = new RegExp(`^${scenario} .*; workers' CPU (\\d+)/(\\d+) %; check counted (\\d+) SUCCEEDED, generator answered (\\d+)$`, 'm').exec(output);
      t.truthy(split, `${scenario}: no workers line in\n${output}`);
      const [a, b] = [Number(split![1]), Number(split![2])];
      t.true(a >= 10 && b >= 10, `${scenario}: workers' CPU ${a}/${b} %`);
    }
    t.regex(output, /^server primary pid \d+, worker pids \d+, \d+ on 127\.0\.0\.1:\d+ \(2 worker processes/m);
    const markdown = readFileSync(join(dir, 'bench-redis-tigerbeetle-workers2.md'), 'utf8');
    t.true(markdown.includes('Store redis, ledger tigerbeetle (2 worker processes (node:cluster, as countersign serve --workers 2); TigerBeetle cluster'));
  },
);

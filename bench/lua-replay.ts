/**
 * The Redis step scripts timed on redis-server alone: the calls `bench/core.ts --capture DIR` saved
 * (one batch's createAll, confirm and commit, byte for byte as the store sent them) are replayed
 * against a private redis-server, emptied before each round, with the scripts of each `--tree`
 * (a checkout of this repository: a worktree with a change, say) in turn, the order reversed
 * every other round. Each call names its script by SHA-1, which is rewritten to the tree's.
 *
 *   npx tsx bench/core.ts --redis-url redis://127.0.0.1:6379 --batches 3 --warmup 1 --capture /tmp/calls
 *   npx tsx bench/lua-replay.ts --capture /tmp/calls --rounds 12 --tree . --tree /tmp/wt-change
 *
 * Reported per step and tree, medians over the rounds, µs per item: the call (its `INFO
 * commandstats` time), its difference from the first tree's (the median of each round's: the two
 * ran in the same round, so the machine's drift between rounds cancels; compare trees by this),
 * the data commands the script ran, the script's own time (the call less its commands: the Lua,
 * its arguments and reply), and redis-server's CPU over the call; and each step's outcomes (every
 * item's reply, unpacked): a script that breaks shows there, and the run fails if a call answers
 * an error or a step's outcomes change between rounds. Not the gRPC server, not the client: a steadier figure for a
 * change to a script than the full bench (bench/README.md, "Performance round 10").
 *
 * Bounds: `--rounds` 1..`roundsMax`; each reply is read whole (`replyBytesMax`).
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { unpackReply } from '../authz/store/redis/pack.js';
import { startPrivateRedis } from './processes.js';
import { parseInfo, redisPerUnit } from './redis-stats.js';

/** Rounds at most. */
export const roundsMax = 1_000;
/** A reply larger than this many bytes stops the replay (a 1 000-item confirm answers about 0.8 MB). */
export const replyBytesMax = 64 * 1024 * 1024;

const steps = ['createAll', 'confirm', 'commit'] as const;
type Step = (typeof steps)[number];

const usage = `npx tsx bench/lua-replay.ts --capture DIR [--rounds N] [--tree PATH]...

  --capture DIR   the calls bench/core.ts --capture saved (NN-<script>.resp)
  --rounds N      rounds (default 10, at most ${roundsMax}); each empties the private Redis, then replays every call once per tree
  --tree PATH     a checkout whose step scripts to time (repeatable; default: this one)
  --until STEP    replay the steps up to this one only (createAll, confirm or commit): a change that
                  breaks the later steps, such as a step cut down to see what its parts cost
`;

interface Sample {
  callUs: number;
  commandUs: number;
  cpuUs: number;
  items: number;
  outcomes: Map<string, number>;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      capture: { type: 'string' },
      rounds: { type: 'string', default: '10' },
      tree: { type: 'string', multiple: true },
      until: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    process.stdout.write(usage);
    return;
  }
  const rounds = Number(values.rounds);
  if (values.capture === undefined) throw new RangeError('--capture DIR is required (the calls bench/core.ts --capture saved)');
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= roundsMax)) throw new RangeError(`--rounds must be an integer from 1 to ${roundsMax}`);
  const last = values.until === undefined ? steps.length - 1 : steps.indexOf(values.until as Step);
  if (last < 0) throw new RangeError(`--until must be one of ${steps.join(', ')}`);
  const calls = readdirSync(values.capture)
    .filter((f) => /^\d+-\w+\.resp$/.test(f))
    .sort()
    .map((file) => ({ step: stepOf(file), wire: readFileSync(`${values.capture}/${file}`) }))
    .filter(({ step }) => steps.indexOf(step) <= last);
  if (calls.length === 0) throw new RangeError(`--capture ${values.capture}: no NN-<script>.resp files`);
  const trees = await Promise.all((values.tree ?? ['.']).map(async (path) => ({ path, lua: await scriptsOf(path) })));

  const redis = await startPrivateRedis().catch((error: unknown) => {
    // Its message suggests --redis-url, which this tool has not: it always empties the Redis it replays on.
    if (error instanceof Error && error.message.startsWith('redis-server is not installed'))
      throw new RangeError('redis-server is not installed: apt-get install -y redis-server (the replay starts a private one)');
    throw error;
  });
  const conn = await RespConnection.open(Number(new URL(redis.url).port));
  try {
    for (const tree of trees) for (const step of steps) await conn.command('SCRIPT', 'LOAD', tree.lua[step]);
    const samples = trees.map(() => new Map<Step, Sample[]>());
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? trees.keys() : [...trees.keys()].reverse();
      for (const t of order) {
        await conn.command('FLUSHALL');
        const byStep = new Map<Step, Sample>();
        for (const { step, wire } of calls) {
          const before = parseInfo(bulkOf(await conn.command('INFO', 'all')).toString('latin1'));
          const reply = await conn.send(withSha(wire, sha1(trees[t]!.lua[step])));
          const after = parseInfo(bulkOf(await conn.command('INFO', 'all')).toString('latin1'));
          if (reply[0] === 0x2d) throw new Error(`tree ${trees[t]!.path}, ${step}: ${reply.toString('utf8', 0, 300).trim()}`);
          const s = byStep.get(step) ?? { callUs: 0, commandUs: 0, cpuUs: 0, items: 0, outcomes: new Map() };
          // Only this call ran between the two INFOs (the INFOs themselves are left out): its split, as the bench reports it.
          const split = redisPerUnit(before, after, 1, { calls: 0, claimed: 0 });
          s.callUs += split.commandMicrosPerUnit + split.scriptMicrosPerUnit;
          s.commandUs += split.commandMicrosPerUnit;
          s.cpuUs += split.cpuMicrosPerUnit;
          for (const item of unpackReply(bulkOf(reply)) as unknown[][]) {
            s.items += 1;
            s.outcomes.set(String(item[0]), (s.outcomes.get(String(item[0])) ?? 0) + 1);
          }
          byStep.set(step, s);
        }
        for (const [step, s] of byStep) samples[t]!.set(step, [...(samples[t]!.get(step) ?? []), s]);
      }
    }
    report(
      trees.map((t) => t.path),
      samples,
      rounds,
    );
  } finally {
    conn.close();
    await redis.stop();
  }
}

function report(paths: string[], samples: Map<Step, Sample[]>[], rounds: number): void {
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
  const lines = [
    `µs per item, medians of ${rounds} rounds (calls replayed on a private redis-server); "vs first": the median of each round's difference from the first tree's call`,
    '',
  ];
  lines.push("| step | tree | items | call | vs first | in commands | script's own | redis-server CPU | outcomes |", '|---|---|--:|--:|--:|--:|--:|--:|---|');
  const json: Record<string, Record<string, unknown>> = {};
  for (const step of steps) {
    const first = samples[0]!.get(step);
    for (const [t, path] of paths.entries()) {
      const runs = samples[t]!.get(step);
      if (runs === undefined || first === undefined) continue;
      const items = runs[0]!.items;
      const outcomes = outcomesOf(runs[0]!);
      for (const run of runs)
        if (outcomesOf(run) !== outcomes) throw new Error(`tree ${path}, ${step}: outcomes changed between rounds (${outcomes}; ${outcomesOf(run)})`);
      const per = (pick: (s: Sample) => number) => median(runs.map((s) => pick(s) / s.items));
      const call = per((s) => s.callUs);
      const commands = per((s) => s.commandUs);
      const cpu = per((s) => s.cpuUs);
      // Paired by round: both trees ran within the same round, so the machine's drift between rounds cancels.
      const vsFirst = median(runs.map((s, r) => s.callUs / s.items - first[r]!.callUs / first[r]!.items));
      lines.push(
        `| ${step} | ${path} | ${items} | ${call.toFixed(1)} | ${t === 0 ? '—' : `${vsFirst >= 0 ? '+' : ''}${vsFirst.toFixed(1)}`} | ${commands.toFixed(1)} | ${(call - commands).toFixed(1)} | ${cpu.toFixed(1)} | ${outcomes} |`,
      );
      (json[path] ??= {})[step] = {
        items,
        callUs: call,
        vsFirstUs: vsFirst,
        commandUs: commands,
        scriptOwnUs: call - commands,
        cpuUs: cpu,
        outcomes: Object.fromEntries(runs[0]!.outcomes),
      };
    }
  }
  console.log(lines.join('\n'));
  console.log(JSON.stringify({ rounds, perItem: json }));
}

/** A step's outcomes as one line: each outcome and how many items had it. */
function outcomesOf(s: Sample): string {
  return [...s.outcomes].map(([o, n]) => `${o} ${n}`).join(', ');
}

function stepOf(file: string): Step {
  const name = /^\d+-(\w+)\.resp$/.exec(file)![1]!;
  if (!(steps as readonly string[]).includes(name)) throw new RangeError(`${file}: not a step script (${steps.join(', ')})`);
  return name as Step;
}

async function scriptsOf(tree: string): Promise<Record<Step, string>> {
  const at = (file: string) => pathToFileURL(resolve(tree, 'authz/store/redis', file)).href;
  const [create, confirm, commit] = await Promise.all([import(at('create-lua.ts')), import(at('confirm-lua.ts')), import(at('commit-lua.ts'))]);
  return { createAll: create.createAllLua, confirm: confirm.confirmLua, commit: commit.commitLua };
}

const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

/** The call with its script's SHA-1 (EVALSHA's first argument, `$40`) replaced. */
function withSha(wire: Buffer, sha: string): Buffer {
  const out = Buffer.from(wire);
  const at = out.indexOf('$40\r\n');
  if (at < 0) throw new Error('a captured call without an EVALSHA SHA-1');
  out.write(sha, at + 5, 'latin1');
  return out;
}

/** The payload of a RESP bulk string reply. */
function bulkOf(reply: Buffer): Buffer {
  const nl = reply.indexOf('\r\n');
  if (reply[0] !== 0x24) throw new Error(`expected a bulk string, got ${reply.toString('utf8', 0, 80)}`);
  return reply.subarray(nl + 2, nl + 2 + Number(reply.toString('latin1', 1, nl)));
}

/** One connection, one request at a time, replies kept whole (RESP2). */
class RespConnection {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (reply: Buffer) => void; reject: (error: Error) => void } | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      if (this.buffer.length > replyBytesMax) this.fail(new Error(`a reply above replyBytesMax (${replyBytesMax} bytes)`));
      else this.deliver();
    });
    socket.on('error', (error) => this.fail(error));
    socket.on('close', () => this.fail(new Error('redis-server closed the connection')));
  }

  static open(port: number): Promise<RespConnection> {
    return new Promise((ok, fail) => {
      const socket = net.connect({ port, host: '127.0.0.1' }, () => ok(new RespConnection(socket)));
      socket.once('error', fail);
    });
  }

  send(wire: Buffer | string): Promise<Buffer> {
    return new Promise((ok, fail) => {
      this.waiting = { resolve: ok, reject: fail };
      this.socket.write(wire);
    });
  }

  command(...args: string[]): Promise<Buffer> {
    return this.send(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  }

  close(): void {
    this.waiting = undefined;
    this.socket.destroy();
  }

  private deliver(): void {
    const end = replyEnd(this.buffer, 0);
    if (end < 0 || this.waiting === undefined) return;
    const reply = this.buffer.subarray(0, end);
    this.buffer = this.buffer.subarray(end);
    const { resolve: ok } = this.waiting;
    this.waiting = undefined;
    ok(reply);
  }

  private fail(error: Error): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.reject(error);
  }
}

/** The offset just past the RESP value at `at`, or -1 while it is incomplete. */
function replyEnd(b: Buffer, at: number): number {
  const nl = b.indexOf('\r\n', at);
  if (nl < 0) return -1;
  const type = b[at];
  const n = Number(b.toString('latin1', at + 1, nl));
  if (type === 0x2b || type === 0x2d || type === 0x3a) return nl + 2; // + - :
  if (type === 0x24) return n < 0 ? nl + 2 : b.length >= nl + 4 + n ? nl + 4 + n : -1; // $
  if (type === 0x2a) {
    // *
    let p = nl + 2;
    for (let i = 0; i < n; i++) {
      p = replyEnd(b, p);
      if (p < 0) return -1;
    }
    return p;
  }
  throw new Error(`an unknown RESP type byte 0x${type?.toString(16)}`);
}

main().catch((error: unknown) => {
  if (error instanceof RangeError) {
    process.stderr.write(`bench/lua-replay: ${error.message}\n`);
    process.exit(2);
  }
  console.error(error);
  process.exit(1);
});

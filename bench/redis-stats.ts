import net from 'node:net';

/**
 * What Redis did during a measured window, read with INFO on a connection of our own (bench
 * control, outside the measured path): commands by name and the microseconds redis-server spent
 * executing them (`INFO commandstats`; commands run inside Lua scripts are counted too, and each
 * script call once more as EVALSHA/FCALL, its time including theirs) and redis-server's own CPU
 * time (`INFO cpu`).
 */

export interface RedisSnapshot {
  calls: Record<string, number>;
  /** `usec` by command: wall time inside the command (redis-server runs them one at a time). */
  usec: Record<string, number>;
  cpuMicros: number;
}

/** Commands that run a script: their time includes the commands the script ran (counted apart, under their own names). */
const scriptCommands = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall', 'fcall_ro']);

/** Longest wait for INFO, milliseconds. */
const infoTimeoutMs = 5_000;

export function redisSnapshot(url: string): Promise<RedisSnapshot> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port || 6379) });
    let text = '';
    const timer = setTimeout(() => (socket.destroy(), reject(new Error(`redis INFO: no answer within ${infoTimeoutMs} ms`))), infoTimeoutMs);
    socket.once('error', (error) => (clearTimeout(timer), reject(error)));
    socket.once('connect', () => socket.write('*2\r\n$4\r\nINFO\r\n$3\r\nall\r\n'));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      text += chunk;
      const header = /^\$(\d+)\r\n/.exec(text);
      if (header === null || text.length < header[0].length + Number(header[1])) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(parseInfo(text.slice(header[0].length, header[0].length + Number(header[1]))));
    });
  });
}

/** The counters of an `INFO all` reply's text (what `redisSnapshot` reads; bench/lua-replay.ts reads its own connection's). */
export function parseInfo(info: string): RedisSnapshot {
  const calls: Record<string, number> = {};
  const usec: Record<string, number> = {};
  let cpuSeconds = 0;
  for (const line of info.split('\r\n')) {
    const stat = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line);
    if (stat !== null && stat[1] !== 'info') {
      calls[stat[1]!] = Number(stat[2]);
      usec[stat[1]!] = Number(stat[3]);
    }
    const cpu = /^used_cpu_(?:sys|user):([\d.]+)$/.exec(line);
    if (cpu !== null) cpuSeconds += Number(cpu[1]);
  }
  return { calls, usec, cpuMicros: Math.round(cpuSeconds * 1e6) };
}

/** What the expiry sweeper (a timer, once a second, whatever the load) did in a window: its `claimDue` calls and the records they claimed. */
export interface SweeperWindow {
  calls: number;
  claimed: number;
}

/**
 * The commands the sweeper ran in a window on a single Redis, from its calls and claims (it is
 * the only caller of the claim script, authz/store/redis/sweep-lua.ts): one EVALSHA per call,
 * every ZRANGEBYSCORE (only that script runs it), and per claimed record its HGETALL, HSET and
 * ZADD. An index entry whose record is gone costs a ZREM not counted here (none in the bench).
 */
export function sweeperCommands(before: RedisSnapshot, after: RedisSnapshot, sweeper: SweeperWindow): number {
  const zrangebyscore = (after.calls.zrangebyscore ?? 0) - (before.calls.zrangebyscore ?? 0);
  return sweeper.calls + zrangebyscore + 3 * sweeper.claimed;
}

/**
 * Commands per unit (authorization or echo RPC) in the window, by name, and redis-server CPU per
 * unit. `commandsPerUnit` is the request path's: every command redis-server executed in the
 * window but the sweeper's (`sweeperCommandsPerUnit`, reported beside it, as its store calls are);
 * `byCommand` is everything, the sweeper's included. The CPU is split three ways (the sweeper's
 * included: one call a second): inside the data commands (`commandMicrosPerUnit`), inside the
 * scripts but not their commands (`scriptMicrosPerUnit`: the Lua itself, its arguments and reply),
 * and the rest (`otherMicrosPerUnit`: reading and parsing requests, writing replies, the event
 * loop; never below 0, the parts are wall times).
 */
export function redisPerUnit(before: RedisSnapshot, after: RedisSnapshot, units: number, sweeper: SweeperWindow): RedisPerUnit {
  const byCommand: Record<string, number> = {};
  let total = 0;
  let commandUsec = 0;
  let scriptUsec = 0;
  for (const [name, calls] of Object.entries(after.calls)) {
    const delta = calls - (before.calls[name] ?? 0);
    if (delta <= 0) continue;
    total += delta;
    byCommand[name] = units === 0 ? 0 : delta / units;
    const usec = (after.usec[name] ?? 0) - (before.usec[name] ?? 0);
    if (scriptCommands.has(name)) scriptUsec += usec;
    else commandUsec += usec;
  }
  const swept = Math.min(total, sweeperCommands(before, after, sweeper));
  const per = (n: number) => (units === 0 ? 0 : n / units);
  const cpu = after.cpuMicros - before.cpuMicros;
  // A script's usec includes its commands'. INFO cannot tell a command run by a script from one
  // sent alone, so all are taken as run by scripts: exact where every data command is (the
  // authorization steps; directory misses aside), low where some are not (echo's HMGET runs alone,
  // with no script in the window: 0 here).
  const scriptOwn = Math.max(0, scriptUsec - commandUsec);
  return {
    commandsPerUnit: per(total - swept),
    sweeperCommandsPerUnit: per(swept),
    cpuMicrosPerUnit: per(cpu),
    commandMicrosPerUnit: per(commandUsec),
    scriptMicrosPerUnit: per(scriptOwn),
    otherMicrosPerUnit: per(Math.max(0, cpu - commandUsec - scriptOwn)),
    byCommand,
  };
}

export interface RedisPerUnit {
  /** Commands per unit on the request path (the sweeper's left out). */
  commandsPerUnit: number;
  /** The sweeper's commands in the window ÷ units. */
  sweeperCommandsPerUnit: number;
  cpuMicrosPerUnit: number;
  /** redis-server's time inside data commands (in scripts or not) per unit: what the features' writes and reads cost it. */
  commandMicrosPerUnit: number;
  /**
   * Inside script calls but outside their commands, per unit: the Lua, its arguments and its reply
   * (every data command taken as run by a script: see `redisPerUnit`).
   */
  scriptMicrosPerUnit: number;
  /** The rest of `cpuMicrosPerUnit`: requests read and parsed, replies written, the event loop. */
  otherMicrosPerUnit: number;
  /** All commands per unit by name, the sweeper's included. */
  byCommand: Record<string, number>;
}

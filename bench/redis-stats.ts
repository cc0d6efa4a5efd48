import net from 'node:net';

/**
 * What Redis did during a measured window, read with INFO on a connection of our own (bench
 * control, outside the measured path): commands by name (`INFO commandstats`; commands run
 * inside Lua scripts are counted too, and each script call once more as EVALSHA/FCALL) and
 * redis-server's own CPU time (`INFO cpu`).
 */

export interface RedisSnapshot {
  calls: Record<string, number>;
  cpuMicros: number;
}

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

function parseInfo(info: string): RedisSnapshot {
  const calls: Record<string, number> = {};
  let cpuSeconds = 0;
  for (const line of info.split('\r\n')) {
    const stat = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (stat !== null && stat[1] !== 'info') calls[stat[1]!] = Number(stat[2]);
    const cpu = /^used_cpu_(?:sys|user):([\d.]+)$/.exec(line);
    if (cpu !== null) cpuSeconds += Number(cpu[1]);
  }
  return { calls, cpuMicros: Math.round(cpuSeconds * 1e6) };
}

/** Commands per unit (authorization or echo RPC) in the window, by name, and redis-server CPU per unit. */
export function redisPerUnit(before: RedisSnapshot, after: RedisSnapshot, units: number): { commandsPerUnit: number; cpuMicrosPerUnit: number; byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [name, calls] of Object.entries(after.calls)) {
    const delta = calls - (before.calls[name] ?? 0);
    if (delta <= 0) continue;
    total += delta;
    byCommand[name] = units === 0 ? 0 : delta / units;
  }
  return { commandsPerUnit: units === 0 ? 0 : total / units, cpuMicrosPerUnit: units === 0 ? 0 : (after.cpuMicros - before.cpuMicros) / units, byCommand };
}

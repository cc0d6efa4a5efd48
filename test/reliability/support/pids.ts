import { readdirSync, readFileSync } from 'node:fs';

/**
 * Process ids from /proc (Linux): a process's children, and whether a process still runs. Used to
 * find the workers of `countersign serve --workers N` (children of its primary) and to check that
 * they end with it.
 */

/** The direct children of `pid` (every thread's `children` list), empty when `pid` is gone. */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const task of tasks) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    for (const word of text.split(/\s+/)) if (/^\d+$/.test(word)) out.add(Number(word));
  }
  return [...out].sort((a, b) => a - b);
}

/** The command line of `pid` (arguments joined by spaces), undefined when it is gone. */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/**
 * The children of `pid` that run its own command line: the workers node:cluster forked (same
 * node, flags, script and arguments), not helpers it spawned (tsx's esbuild service).
 */
export function forkedChildren(pid: number): number[] {
  const own = commandLine(pid);
  return own === undefined ? [] : childPids(pid).filter((child) => commandLine(child) === own);
}

/** Whether `pid` runs: it exists and is not a zombie (an orphan nobody reaped yet has ended). */
export function isAlive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // `pid (comm) S …`: the state follows the last ')' (comm may contain spaces and parentheses).
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state !== 'Z' && state !== 'X';
}

/** SIGKILLs `pid` if it still runs; true when a signal was sent. */
export function killPid(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    process.kill(pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

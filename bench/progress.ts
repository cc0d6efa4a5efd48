/**
 * A one-line progress bar on stderr while a scenario runs (a terminal only); elsewhere (CI,
 * tests) one line when each scenario ends.
 */

/** How often the bar is redrawn (and the load generator polled), milliseconds. */
export const progressIntervalMs = 250;
const barWidth = 30;

export class ProgressBar {
  private readonly live: boolean;
  private lastWidth = 0;

  constructor(quiet: boolean) {
    this.live = !quiet && process.stderr.isTTY === true;
  }

  /** Redraws: `fraction` of the scenario's time elapsed, in the given phase, with a live rate. */
  update(label: string, fraction: number, phase: string, detail: string): void {
    if (!this.live) return;
    const clamped = Math.min(1, Math.max(0, fraction));
    const filled = Math.round(clamped * barWidth);
    const line = `${label.padEnd(11)} [${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}] ${String(Math.round(clamped * 100)).padStart(3)}% ${phase.padEnd(9)} ${detail}`;
    process.stderr.write(`\r${line}${' '.repeat(Math.max(0, this.lastWidth - line.length))}`);
    this.lastWidth = line.length;
  }

  /** Ends the bar's line with a summary (always printed). */
  done(summary: string): void {
    if (this.live) process.stderr.write(`\r${' '.repeat(this.lastWidth)}\r`);
    this.lastWidth = 0;
    process.stderr.write(`${summary}\n`);
  }
}

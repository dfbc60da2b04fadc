/**
 * Whether the machine runs on battery power, per platform: the parsers are pure (tested), the
 * reader runs the platform's own tool. Unknown (a desktop, a tool missing) reads as mains power.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Linux: /sys/class/power_supply/<name>/{type,online}. On battery when a mains supply exists and none is online. */
export function linuxOnBattery(supplies: { type: string; online?: string }[]): boolean {
  const mains = supplies.filter((s) => s.type.trim() === 'Mains' || s.type.trim() === 'USB');
  return mains.length > 0 && mains.every((s) => (s.online ?? '').trim() === '0');
}

/** macOS: `pmset -g batt` prints "Now drawing from 'Battery Power'" or "'AC Power'". */
export function macOnBattery(pmset: string): boolean {
  return /drawing from 'Battery Power'/.test(pmset);
}

/** Windows: Win32_Battery.BatteryStatus, 1 = discharging (on battery); no battery: no output. */
export function windowsOnBattery(output: string): boolean {
  return output
    .split(/\r?\n/)
    .map((l) => l.trim())
    .some((l) => l === '1');
}

export async function onBattery(platform: NodeJS.Platform = process.platform): Promise<boolean> {
  try {
    if (platform === 'linux') {
      const root = '/sys/class/power_supply';
      const names = fs.existsSync(root) ? fs.readdirSync(root) : [];
      const read = (name: string, file: string) => {
        try {
          return fs.readFileSync(path.join(root, name, file), 'utf8');
        } catch {
          return undefined;
        }
      };
      return linuxOnBattery(names.map((n) => ({ type: read(n, 'type') ?? '', online: read(n, 'online') })));
    }
    if (platform === 'darwin') return macOnBattery((await run('pmset', ['-g', 'batt'], { timeout: 5000 })).stdout);
    if (platform === 'win32') {
      const { stdout } = await run(
        'powershell.exe',
        ['-NoProfile', '-Command', '(Get-CimInstance Win32_Battery).BatteryStatus'],
        { timeout: 10_000, windowsHide: true },
      );
      return windowsOnBattery(stdout);
    }
  } catch {
    // a missing tool says nothing about the power source
  }
  return false;
}

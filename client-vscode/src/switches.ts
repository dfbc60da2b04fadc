/** When the extension asks for completions at all: the user's switches, in one pure decision. */

export const SNOOZE_MS = 30 * 60 * 1000;

/** Why completions are off here, or undefined when they are on. */
export type Pause = 'disabled' | 'snoozed' | 'battery' | 'language';

export interface Switches {
  /** `rltab.enable`: the global switch. */
  enabled: boolean;
  /** Epoch milliseconds until which completions are snoozed (0: not snoozed). */
  snoozedUntil: number;
  /** `rltab.pauseOnBattery`, and whether the machine runs on battery now. */
  pauseOnBattery: boolean;
  onBattery: boolean;
  /** `rltab.languages`: language id → on/off; `"*"` for every other language. */
  languages: Record<string, unknown>;
  /** The languages the served model knows (`rltab/status`), or null when it does not say. */
  modelLanguages: readonly string[] | null | undefined;
}

/**
 * A language is on when the user said so for it, else when the user said so for `"*"`, else when
 * the model knows it (a model that does not say knows every language). Like Copilot's
 * `github.copilot.enable`, but the default follows the model: the starter only knows Python.
 */
export function languageEnabled(s: Pick<Switches, 'languages' | 'modelLanguages'>, languageId: string): boolean {
  const own = s.languages[languageId];
  if (typeof own === 'boolean') return own;
  const any = s.languages['*'];
  if (typeof any === 'boolean') return any;
  return s.modelLanguages == null || s.modelLanguages.includes(languageId);
}

/** The first reason completions are off for `languageId` at `now`; undefined when they are on. */
export function pauseReason(s: Switches, languageId: string | undefined, now: number): Pause | undefined {
  if (!s.enabled) return 'disabled';
  if (s.snoozedUntil > now) return 'snoozed';
  if (s.pauseOnBattery && s.onBattery) return 'battery';
  if (languageId !== undefined && !languageEnabled(s, languageId)) return 'language';
  return undefined;
}

/** Training waits while the machine runs on battery (if the user wants that). */
export function trainingPaused(s: Pick<Switches, 'pauseOnBattery' | 'onBattery'>): boolean {
  return s.pauseOnBattery && s.onBattery;
}

/** Minutes left of a snooze, rounded up (0 when none). */
export function snoozeMinutesLeft(snoozedUntil: number, now: number): number {
  return snoozedUntil > now ? Math.ceil((snoozedUntil - now) / 60_000) : 0;
}

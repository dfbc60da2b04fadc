/** The `rltab/status` notification (architecture.md §3) and how the status bar shows it. Pure. */
import { snoozeMinutesLeft, type Pause } from './switches';

/** The last update cycle: `version` published, or null when the guard refused it (`reason`). */
export interface LastUpdate {
  id: number;
  time: number;
  version: string | null;
  parent: string;
  reason: string;
}

export interface RltabStatus {
  modelVersion: string;
  learning: boolean;
  acceptRate: number;
  pendingEvents: number;
  /** Beyond the contract's four (older servers leave them out). */
  languages?: string[] | null;
  training?: boolean;
  learningPaused?: boolean;
  lastUpdate?: LastUpdate | null;
}

/** Validates a notification's params; `undefined` for anything that is not a status. */
export function parseStatus(raw: unknown): RltabStatus | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  if (
    typeof r.modelVersion !== 'string' ||
    typeof r.learning !== 'boolean' ||
    typeof r.acceptRate !== 'number' ||
    typeof r.pendingEvents !== 'number'
  ) {
    return undefined;
  }
  const status: RltabStatus = {
    modelVersion: r.modelVersion,
    learning: r.learning,
    acceptRate: r.acceptRate,
    pendingEvents: r.pendingEvents,
  };
  if (r.languages === null || (Array.isArray(r.languages) && r.languages.every((l) => typeof l === 'string'))) {
    status.languages = r.languages;
  }
  if (typeof r.training === 'boolean') status.training = r.training;
  if (typeof r.learningPaused === 'boolean') status.learningPaused = r.learningPaused;
  const u = r.lastUpdate as Record<string, unknown> | null | undefined;
  if (u === null) status.lastUpdate = null;
  else if (
    typeof u === 'object' &&
    typeof u.id === 'number' &&
    typeof u.time === 'number' &&
    (u.version === null || typeof u.version === 'string') &&
    typeof u.parent === 'string' &&
    typeof u.reason === 'string'
  ) {
    status.lastUpdate = { id: u.id, time: u.time, version: u.version, parent: u.parent, reason: u.reason };
  }
  return status;
}

export type ServerState = 'starting' | 'running' | 'stopped';

/** What the editor side adds to the server's status: switches, and the request in flight. */
export interface View {
  pause?: Pause;
  languageId?: string;
  snoozedUntil?: number;
  now?: number;
  fetching?: boolean;
  /** The last completion took longer than SLOW_MS. */
  slow?: boolean;
}

/** A completion slower than this shows as slow: the model is too big for this machine, or busy. */
export const SLOW_MS = 1500;

export function percent(rate: number): string {
  return `${Math.round(Math.min(Math.max(rate, 0), 1) * 100)}%`;
}

/** Status bar text, with codicons: `rltab v0003 · learning · 23%`, or the state that matters now. */
export function statusText(status: RltabStatus | undefined, state: ServerState, view: View = {}): string {
  if (state === 'stopped') return '$(circle-slash) rltab';
  if (view.pause === 'disabled') return '$(circle-slash) rltab off';
  if (view.pause === 'snoozed') {
    return `$(debug-pause) rltab snoozed ${snoozeMinutesLeft(view.snoozedUntil ?? 0, view.now ?? Date.now())} min`;
  }
  if (view.pause === 'battery') return '$(debug-pause) rltab paused on battery';
  if (state === 'starting' || status === undefined) return '$(loading~spin) rltab';
  if (view.pause === 'language') return `$(circle-slash) rltab · off for ${view.languageId ?? 'this language'}`;
  if (view.fetching) return `$(loading~spin) rltab ${status.modelVersion}`;
  const icon = status.training ? '$(sync~spin)' : status.learning ? '$(mortar-board)' : '$(sparkle)';
  const learning = status.training ? ' · training' : status.learning ? ' · learning' : '';
  const slow = view.slow ? ' · slow' : '';
  return `${icon} rltab ${status.modelVersion}${learning}${slow} · ${percent(status.acceptRate)}`;
}

export function statusTooltip(status: RltabStatus | undefined, state: ServerState, view: View = {}): string {
  if (state === 'stopped') return 'rltab: the server is not running. Click for options.';
  const lines: string[] = [];
  if (view.pause === 'disabled') lines.push('Completions are off (setting rltab.enable).');
  if (view.pause === 'snoozed') lines.push('Completions are snoozed; click to resume.');
  if (view.pause === 'battery') lines.push('Paused on battery power: no completions, no training (rltab.pauseOnBattery).');
  if (view.pause === 'language') {
    lines.push(
      `Off for ${view.languageId ?? 'this language'}: the model knows ${(status?.languages ?? []).join(', ') || 'other languages'} (setting rltab.languages).`,
    );
  }
  if (status === undefined) {
    lines.push('Starting the server and loading the model…');
    return lines.join('\n');
  }
  if (view.slow) lines.push(`The last completion took over ${SLOW_MS / 1000} s.`);
  lines.push(
    `Model: ${status.modelVersion}`,
    `Learning: ${status.learning ? (status.learningPaused ? 'on, training paused' : 'on (stored locally only)') : 'off'}`,
    `Accept rate (this model): ${percent(status.acceptRate)}`,
  );
  if (status.training) lines.push('Training a new version in the background…');
  if (status.learning) lines.push(`Events waiting for the next update: ${status.pendingEvents}`);
  if (status.lastUpdate) lines.push(`Last update: ${updateSummary(status.lastUpdate)}`);
  lines.push('Click for options.');
  return lines.join('\n');
}

function updateSummary(u: LastUpdate): string {
  return u.version !== null ? `${u.version} went live (from ${u.parent})` : `refused (from ${u.parent}): ${u.reason}`;
}

export interface Notice {
  kind: 'published' | 'refused';
  message: string;
}

/**
 * What to tell the user when a status arrives: a new version went live, or an update was refused
 * and why. Only for updates that finished while this editor was watching (`prev` seen).
 */
export function updateNotice(prev: RltabStatus | undefined, next: RltabStatus): Notice | undefined {
  const u = next.lastUpdate;
  if (prev === undefined || !u || u.id === prev.lastUpdate?.id) return undefined;
  if (u.version !== null) {
    return { kind: 'published', message: `rltab: ${u.version} is live, trained on your accepts and rejections (from ${u.parent}).` };
  }
  return { kind: 'refused', message: `rltab: an update from ${u.parent} was not published. ${u.reason}` };
}

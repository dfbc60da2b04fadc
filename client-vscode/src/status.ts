/** The `rltab/status` notification (architecture.md §3) and how the status bar shows it. Pure. */

export interface RltabStatus {
  modelVersion: string;
  learning: boolean;
  acceptRate: number;
  pendingEvents: number;
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
  return {
    modelVersion: r.modelVersion,
    learning: r.learning,
    acceptRate: r.acceptRate,
    pendingEvents: r.pendingEvents,
  };
}

export type ServerState = 'starting' | 'running' | 'stopped';

export function percent(rate: number): string {
  return `${Math.round(Math.min(Math.max(rate, 0), 1) * 100)}%`;
}

/** Status bar text, with codicons: `rltab v0003 · learning · 23%`. */
export function statusText(status: RltabStatus | undefined, state: ServerState): string {
  if (state === 'stopped') return '$(circle-slash) rltab';
  if (state === 'starting' || status === undefined) return '$(loading~spin) rltab';
  const icon = status.learning ? '$(mortar-board)' : '$(sparkle)';
  const learning = status.learning ? ' · learning' : '';
  return `${icon} rltab ${status.modelVersion}${learning} · ${percent(status.acceptRate)}`;
}

export function statusTooltip(status: RltabStatus | undefined, state: ServerState): string {
  if (state === 'stopped') return 'rltab: the server is not running. Click for options.';
  if (status === undefined) return 'rltab: starting the server and loading the model…';
  const lines = [
    `Model: ${status.modelVersion}`,
    `Learning: ${status.learning ? 'on (stored locally only)' : 'off'}`,
    `Accept rate (this model): ${percent(status.acceptRate)}`,
  ];
  if (status.learning) lines.push(`Events waiting for the next update: ${status.pendingEvents}`);
  lines.push('Click for options.');
  return lines.join('\n');
}

/** The quick picks: the status bar menu and the model picker. Pure: which entries, in which order. */
import type { RltabStatus } from './status';

export type MenuAction =
  | 'toggleEnabled'
  | 'snooze'
  | 'toggleLearning'
  | 'trainNow'
  | 'pickModel'
  | 'rollback'
  | 'showLearned'
  | 'forgetRepo'
  | 'openStats'
  | 'showLog';

export interface MenuItem {
  label: string;
  description?: string;
  action: MenuAction;
}

export const OPT_IN_MESSAGE =
  'Learn from your Tab key? rltab will store the code around each suggestion, the suggestion and ' +
  'what you did with it (accepted, rejected, edited) in a SQLite file in your home directory, and ' +
  'train a local copy of the model on it in a low-priority background process. Nothing leaves ' +
  'this machine. Secrets (keys, tokens, .env files) are never stored. You can forget a repository ' +
  'or everything at any time.';

export interface Switched {
  enabled: boolean;
  snoozed: boolean;
}

export function menuItems(
  status: RltabStatus | undefined,
  workspaceFolder: string | undefined,
  switched: Switched = { enabled: true, snoozed: false },
): MenuItem[] {
  const learning = status?.learning ?? false;
  const items: MenuItem[] = [
    {
      label: switched.enabled ? '$(circle-slash) Turn completions off' : '$(check) Turn completions on',
      description: 'everywhere (rltab.enable)',
      action: 'toggleEnabled',
    },
  ];
  if (switched.enabled) {
    items.push({
      label: switched.snoozed ? '$(play) Resume completions' : '$(debug-pause) Snooze for 30 minutes',
      action: 'snooze',
    });
  }
  items.push({
    label: learning ? '$(debug-pause) Turn learning off' : '$(mortar-board) Turn learning on…',
    description: learning ? 'stop recording prompts; keep the current model' : 'opt in: stored locally only',
    action: 'toggleLearning',
  });
  if (learning) {
    items.push({
      label: '$(run) Train now',
      description: `${status?.pendingEvents ?? 0} events waiting`,
      action: 'trainNow',
    });
  }
  items.push({
    label: '$(versions) Choose the model…',
    description: status ? `serving ${status.modelVersion}` : undefined,
    action: 'pickModel',
  });
  items.push({ label: '$(lightbulb) What did rltab learn?', action: 'showLearned' });
  if (workspaceFolder !== undefined) {
    items.push({ label: '$(trash) Forget this repository', description: workspaceFolder, action: 'forgetRepo' });
  }
  items.push({ label: '$(graph) Open stats', description: 'accept rate per model version', action: 'openStats' });
  items.push({ label: '$(output) Show the server log', action: 'showLog' });
  return items;
}

/** A row of `rltab versions --json`. */
export interface VersionRow {
  version: string;
  current: boolean;
  date: string | null;
  parent: string | null;
  events: number | null;
  shown: number;
  accept_rate: number;
  chars_accepted: number;
}

export interface VersionItem {
  label: string;
  description: string;
  detail: string;
  version: string;
}

/** The model picker: newest first, the live one marked, each with what it did for the user. */
export function versionItems(rows: VersionRow[]): VersionItem[] {
  return [...rows].reverse().map((r) => ({
    label: `${r.current ? '$(check) ' : ''}${r.version}`,
    description: [r.date ?? 'shipped', r.parent ? `from ${r.parent}` : '', r.events !== null ? `${r.events} events` : '']
      .filter(Boolean)
      .join(' · '),
    detail: `${r.shown} shown · ${Math.round(100 * r.accept_rate)}% taken · ${r.chars_accepted} chars accepted`,
    version: r.version,
  }));
}

/** The quick pick behind the status bar item. Pure: which entries, in which order. */
import type { RltabStatus } from './status';

export type MenuAction = 'toggleLearning' | 'trainNow' | 'rollback' | 'forgetRepo' | 'openStats' | 'showLog';

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

export function menuItems(status: RltabStatus | undefined, workspaceFolder: string | undefined): MenuItem[] {
  const learning = status?.learning ?? false;
  const items: MenuItem[] = [
    {
      label: learning ? '$(debug-pause) Turn learning off' : '$(mortar-board) Turn learning on…',
      description: learning ? 'stop recording prompts; keep the current model' : 'opt in: stored locally only',
      action: 'toggleLearning',
    },
  ];
  if (learning) {
    items.push({
      label: '$(run) Train now',
      description: `${status?.pendingEvents ?? 0} events waiting`,
      action: 'trainNow',
    });
  }
  items.push({
    label: '$(history) Roll back the model',
    description: status ? `serving ${status.modelVersion}` : undefined,
    action: 'rollback',
  });
  if (workspaceFolder !== undefined) {
    items.push({ label: '$(trash) Forget this repository', description: workspaceFolder, action: 'forgetRepo' });
  }
  items.push({ label: '$(graph) Open stats', description: 'accept rate per model version', action: 'openStats' });
  items.push({ label: '$(output) Show the server log', action: 'showLog' });
  return items;
}

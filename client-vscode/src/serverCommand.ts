/** How to launch the rltab server (and its CLI) from the `rltab.serverPath` setting. Pure. */
import * as path from 'node:path';

export interface Command {
  command: string;
  args: string[];
}

const PYTHON = /^(python[0-9.]*|py)(\.exe)?$/i;

/** `rltab ARGS`, or `python -m rltab.server.cli ARGS` when the setting names a Python interpreter. */
export function rltabCommand(serverPath: string, args: string[]): Command {
  const command = serverPath.trim() || 'rltab';
  const base = command.split(/[\\/]/).pop() ?? command; // either separator: settings travel between OSes
  if (PYTHON.test(base)) {
    return { command, args: ['-m', 'rltab.server.cli', ...args] };
  }
  return { command, args };
}

/** The command an editor runs for the language server. */
export function serverCommand(serverPath: string): Command {
  return rltabCommand(serverPath, ['serve']);
}

export interface Environment {
  PATH?: string;
  PATHEXT?: string;
  HOME?: string;
}

/**
 * The file `command` names: itself when it contains a directory part (`~/` expanded), else the
 * first match on PATH (with PATHEXT on Windows). `undefined` when there is none, so the extension
 * can say so before a server launch fails with a bare ENOENT.
 */
export function findExecutable(
  command: string,
  env: Environment,
  platform: NodeJS.Platform,
  isFile: (p: string) => boolean,
): string | undefined {
  const p = platform === 'win32' ? path.win32 : path.posix;
  let target = command;
  if (target.startsWith('~/') && env.HOME) {
    target = p.join(env.HOME, target.slice(2));
  }
  const extensions =
    platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter(Boolean)] : [''];
  const candidates = (base: string) => extensions.map((ext) => base + ext);
  if (target.includes('/') || (platform === 'win32' && target.includes('\\'))) {
    return candidates(target).find(isFile);
  }
  for (const dir of (env.PATH ?? '').split(platform === 'win32' ? ';' : ':')) {
    if (!dir) continue;
    const found = candidates(p.join(dir, target)).find(isFile);
    if (found) return found;
  }
  return undefined;
}

// rltab is not on PyPI: the server installs from a checkout (the README's first command).
export const INSTALL_HINT =
  'Install the rltab server from a checkout of its repository: `python3 -m venv .venv && .venv/bin/pip install -e .`, ' +
  'then set `rltab.serverPath` to `.venv/bin/rltab` (or to the Python interpreter that has rltab).';

/**
 * What to tell the user when the server exits before it ever answered (wrong interpreter, a
 * broken install, a bad flag): the program, why, from the last line it wrote to stderr, and the fix.
 */
export function startFailure(serverPath: string, exitCode: number | null, stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  const missing = lines.find((l) => /No module named '?rltab/.test(l));
  const last = missing ?? lines[lines.length - 1];
  const why = last !== undefined ? `: ${last}` : exitCode !== null ? ` (exit code ${exitCode})` : '';
  const fix = missing !== undefined
    ? `"${serverPath}" is a Python without rltab. ${INSTALL_HINT}`
    : 'See the rltab output for the whole message; if the install is broken, reinstall it. ' + INSTALL_HINT;
  return `rltab: the server "${serverPath}" stopped as it started${why}. ${fix}`;
}

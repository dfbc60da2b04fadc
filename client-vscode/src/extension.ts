/**
 * The rltab VS Code extension: starts `rltab serve`, forwards what happens to suggestions and
 * shows the server's status. All completion and learning logic lives in the server.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

import { menuItems, OPT_IN_MESSAGE, type MenuAction } from './menu';
import { findExecutable, INSTALL_HINT, rltabCommand, serverCommand, type Command } from './serverCommand';
import { serverSettings } from './settings';
import { parseStatus, statusText, statusTooltip, type RltabStatus, type ServerState } from './status';
import { SuggestionTracker, type Report } from './tracker';

const run = promisify(execFile);

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('rltab', { log: true });
  const bar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  const tracker = new SuggestionTracker();
  let status: RltabStatus | undefined;
  let state = 'starting' as ServerState;
  const render = () => {
    bar.text = statusText(status, state);
    bar.tooltip = statusTooltip(status, state);
  };
  bar.command = 'rltab.menu';
  render();
  bar.show();
  context.subscriptions.push(output, bar);

  const config = () => vscode.workspace.getConfiguration('rltab');
  const resolve = (cmd: Command): Command | undefined => {
    const found = findExecutable(cmd.command, process.env, process.platform, isFile);
    return found === undefined ? undefined : { command: found, args: cmd.args };
  };
  /** Runs the rltab CLI (same home directory as the server: both read RLTAB_HOME). */
  const cli = async (args: string[]): Promise<string> => {
    const cmd = resolve(rltabCommand(config().get<string>('serverPath', 'rltab'), args));
    if (cmd === undefined) throw new Error(`cannot find ${config().get<string>('serverPath')}`);
    const { stdout } = await run(cmd.command, cmd.args, { timeout: 120_000 });
    return stdout;
  };
  const report = (reports: Report[]) => {
    for (const r of reports) {
      client
        ?.sendRequest(ExecuteCommandRequest.type, { command: r.command, arguments: r.args })
        .catch((e: unknown) => {
          output.warn(`${r.command} failed: ${String(e)}`);
        });
    }
  };
  const serverCall = async (command: string, args: unknown[] = []): Promise<unknown> => {
    if (client === undefined || state !== 'running') throw new Error('the rltab server is not running');
    return client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
  };

  // -- the suggestion on screen --------------------------------------------------------------
  const partial = (action: string) => async () => {
    await vscode.commands.executeCommand(action);
    const editor = vscode.window.activeTextEditor;
    if (editor === undefined) return;
    const doc = editor.document;
    report(tracker.partiallyAccepted(doc.uri.toString(), doc.offsetAt(editor.selection.active), reader(doc)));
  };
  context.subscriptions.push(
    vscode.commands.registerCommand('rltab.acceptNextWord', partial('editor.action.inlineSuggest.acceptNextWord')),
    vscode.commands.registerCommand('rltab.acceptNextLine', partial('editor.action.inlineSuggest.acceptNextLine')),
    vscode.commands.registerCommand('rltab.dismiss', async () => {
      report(tracker.dismissed());
      await vscode.commands.executeCommand('editor.action.inlineSuggest.hide');
    }),
    vscode.workspace.onDidChangeTextDocument((e) => {
      const last = e.contentChanges[e.contentChanges.length - 1];
      if (last === undefined) return;
      const cursor = last.rangeOffset + last.text.length;
      report(tracker.edited(e.document.uri.toString(), cursor, reader(e.document)));
    }),
  );

  // -- status bar menu ---------------------------------------------------------------------------
  const actions: Record<MenuAction, () => Promise<void>> = {
    toggleLearning: async () => {
      const enabled = config().get<boolean>('learning.enabled') === true;
      if (!enabled) {
        const yes = 'Turn learning on';
        const choice = await vscode.window.showInformationMessage(OPT_IN_MESSAGE, { modal: true }, yes);
        if (choice !== yes) return;
      }
      // The client forwards the change to the server (didChangeConfiguration, section `rltab`).
      await config().update('learning.enabled', !enabled, vscode.ConfigurationTarget.Global);
    },
    trainNow: async () => {
      await serverCall('rltab.train');
      vscode.window.showInformationMessage(
        'rltab: training started in the background; the new model goes live once it passes its checks.',
      );
    },
    rollback: async () => {
      const result = (await serverCall('rltab.rollback')) as { current?: string } | null;
      vscode.window.showInformationMessage(`rltab: now serving ${result?.current ?? 'the previous model'}`);
    },
    forgetRepo: async () => {
      const folder = workspaceFolder();
      if (folder === undefined) return;
      const yes = 'Forget';
      const choice = await vscode.window.showWarningMessage(
        `Delete everything rltab recorded for ${folder}? Models already trained on it are kept; roll back to undo their learning.`,
        { modal: true },
        yes,
      );
      if (choice !== yes) return;
      const out = await cli(['forget', '--repo', folder]);
      vscode.window.showInformationMessage(`rltab: ${out.trim() || 'forgotten'}`);
    },
    openStats: async () => {
      const dir = context.globalStorageUri.fsPath;
      fs.mkdirSync(dir, { recursive: true });
      const png = path.join(dir, 'stats.png');
      await cli(['stats', '--plot', png]);
      await vscode.commands.executeCommand('vscode.open', vscode.Uri.file(png));
    },
    showLog: () => {
      output.show();
      return Promise.resolve();
    },
  };
  const guarded = (fn: () => Promise<void>) => async () => {
    try {
      await fn();
    } catch (e) {
      vscode.window.showErrorMessage(`rltab: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  context.subscriptions.push(
    vscode.commands.registerCommand(
      'rltab.menu',
      guarded(async () => {
        if (state === 'stopped') return missingServer(config().get<string>('serverPath', 'rltab'));
        const pick = await vscode.window.showQuickPick(menuItems(status, workspaceFolder()), { title: 'rltab' });
        if (pick !== undefined) await actions[pick.action]();
      }),
    ),
    vscode.commands.registerCommand('rltab.toggleLearning', guarded(actions.toggleLearning)),
    vscode.commands.registerCommand('rltab.trainNow', guarded(actions.trainNow)),
    vscode.commands.registerCommand('rltab.rollbackModel', guarded(actions.rollback)),
    vscode.commands.registerCommand('rltab.forgetRepo', guarded(actions.forgetRepo)),
    vscode.commands.registerCommand('rltab.openStats', guarded(actions.openStats)),
    vscode.commands.registerCommand('rltab.trigger', () =>
      vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'),
    ),
    vscode.commands.registerCommand(
      'rltab.restartServer',
      guarded(async () => {
        if (client === undefined) return missingServer(config().get<string>('serverPath', 'rltab'));
        await client.restart();
      }),
    ),
  );

  // -- the language client -----------------------------------------------------------------------
  const serverPath = config().get<string>('serverPath', 'rltab');
  const server = resolve(serverCommand(serverPath));
  if (server === undefined) {
    state = 'stopped';
    render();
    void missingServer(serverPath);
    return;
  }
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: serverSettings(config()),
    synchronize: { configurationSection: 'rltab' },
    outputChannel: output,
    middleware: {
      // Remember what is shown, so partial accepts and dismissals can name its id.
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const result = await next(document, position, context, token);
        const items = Array.isArray(result) ? result : (result?.items ?? []);
        const first = items[0];
        const id: unknown = first?.command?.arguments?.[0];
        if (first !== undefined && typeof first.insertText === 'string' && typeof id === 'string') {
          tracker.show({ id, uri: document.uri.toString(), offset: document.offsetAt(position), text: first.insertText });
        }
        return result;
      },
    },
  };
  client = new LanguageClient(
    'rltab',
    'rltab',
    { command: server.command, args: server.args, transport: TransportKind.stdio },
    clientOptions,
  );
  context.subscriptions.push(
    client.onNotification('rltab/status', (params: unknown) => {
      status = parseStatus(params) ?? status;
      render();
    }),
    client.onDidChangeState((e) => {
      state = e.newState === State.Running ? 'running' : e.newState === State.Starting ? 'starting' : 'stopped';
      render();
    }),
  );
  await client.start();
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

async function missingServer(serverPath: string): Promise<void> {
  const how = 'How to install';
  const settings = 'Open settings';
  const choice = await vscode.window.showErrorMessage(
    `rltab: cannot find the server "${serverPath}" (setting rltab.serverPath). ${INSTALL_HINT}`,
    how,
    settings,
  );
  if (choice === how) {
    const readme = vscode.extensions.getExtension('rltab.rltab')?.extensionUri;
    if (readme !== undefined) {
      await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.joinPath(readme, 'README.md'));
    }
  } else if (choice === settings) {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'rltab.serverPath');
  }
}

function reader(doc: vscode.TextDocument) {
  return (start: number, end: number) => doc.getText(new vscode.Range(doc.positionAt(start), doc.positionAt(end)));
}

function workspaceFolder(): string | undefined {
  const uri = vscode.window.activeTextEditor?.document.uri;
  const folder = (uri && vscode.workspace.getWorkspaceFolder(uri)) ?? vscode.workspace.workspaceFolders?.[0];
  return folder?.uri.fsPath;
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}


/**
 * The rltab VS Code extension: starts `rltab serve`, forwards what happens to suggestions and
 * shows the server's status. All completion and learning logic lives in the server.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  type ErrorHandler,
  ExecuteCommandRequest,
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  State,
} from 'vscode-languageclient/node';

import { onBattery } from './battery';
import { learnedHtml, type LearnedEntry } from './learnedView';
import { menuItems, OPT_IN_MESSAGE, versionItems, type MenuAction, type VersionRow } from './menu';
import { findExecutable, INSTALL_HINT, rltabCommand, serverCommand, startFailure, type Command } from './serverCommand';
import { serverSettings } from './settings';
import {
  parseStatus,
  SLOW_MS,
  statusText,
  statusTooltip,
  updateNotice,
  type RltabStatus,
  type ServerState,
} from './status';
import { pauseReason, SNOOZE_MS, trainingPaused, type Switches } from './switches';
import { SuggestionTracker, type Report } from './tracker';

const BATTERY_POLL_MS = 60_000;

const run = promisify(execFile);

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const output = vscode.window.createOutputChannel('rltab', { log: true });
  const bar = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  const tracker = new SuggestionTracker();
  let status: RltabStatus | undefined;
  let state = 'starting' as ServerState;
  let snoozedUntil = 0;
  let battery = false;
  let fetching = 0;
  let slow = false;
  const config = () => vscode.workspace.getConfiguration('rltab');
  const switches = (): Switches => ({
    enabled: config().get<boolean>('enable', true),
    snoozedUntil,
    pauseOnBattery: config().get<boolean>('pauseOnBattery', true),
    onBattery: battery,
    languages: config().get<Record<string, unknown>>('languages', {}),
    modelLanguages: status?.languages,
  });
  const activeLanguage = () => vscode.window.activeTextEditor?.document.languageId;
  const render = () => {
    const now = Date.now();
    const languageId = activeLanguage();
    const view = {
      pause: pauseReason(switches(), languageId, now),
      languageId,
      snoozedUntil,
      now,
      fetching: fetching > 0,
      slow,
    };
    bar.text = statusText(status, state, view);
    bar.tooltip = statusTooltip(status, state, view);
  };
  bar.command = 'rltab.menu';
  render();
  bar.show();
  context.subscriptions.push(output, bar);

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
    toggleEnabled: async () => {
      await config().update('enable', !config().get<boolean>('enable', true), vscode.ConfigurationTarget.Global);
      render();
    },
    snooze: () => {
      snoozedUntil = snoozedUntil > Date.now() ? 0 : Date.now() + SNOOZE_MS;
      render();
      return Promise.resolve();
    },
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
      const r = (await serverCall('rltab.train')) as { started?: boolean; how?: string } | null;
      vscode.window.showInformationMessage(
        r?.started === false
          ? `rltab: not training now: ${r.how ?? 'the server declined'}.`
          : 'rltab: training started in the background; the new model goes live once it passes its checks.',
      );
    },
    pickModel: async () => {
      const folder = workspaceFolder();
      const repo = folder !== undefined ? ['--repo', folder] : [];
      const rows = JSON.parse(await cli(['versions', '--json', ...repo])) as VersionRow[];
      // A repository's own chain grows from the shared versions: offer both.
      const shared = folder !== undefined ? (JSON.parse(await cli(['versions', '--json'])) as VersionRow[]) : [];
      const seen = new Set(rows.map((r) => r.version));
      const all = [...shared.filter((r) => !seen.has(r.version)).map((r) => ({ ...r, current: false })), ...rows];
      const pick = await vscode.window.showQuickPick(versionItems(all), {
        title: 'rltab: serve which model?',
        placeHolder: folder !== undefined ? `for ${folder}` : 'for every workspace',
      });
      if (pick === undefined) return;
      await cli(['use', pick.version, ...repo]);
      vscode.window.showInformationMessage(`rltab: now serving ${pick.version} (from the next completion on)`);
    },
    rollback: async () => {
      const result = (await serverCall('rltab.rollback')) as { current?: string } | null;
      vscode.window.showInformationMessage(`rltab: now serving ${result?.current ?? 'the previous model'}`);
    },
    showLearned: async () => {
      const folder = workspaceFolder();
      const panel = vscode.window.createWebviewPanel('rltab.learned', 'What did rltab learn?', vscode.ViewColumn.Beside, {
        enableScripts: false,
      });
      panel.webview.html = '<p>Asking rltab…</p>';
      const entries = JSON.parse(
        await cli(['learned', '--json', ...(folder !== undefined ? ['--repo', folder] : [])]),
      ) as LearnedEntry[];
      panel.webview.html = learnedHtml(entries, folder ?? 'all repositories');
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
        if (state === 'stopped') return vscode.commands.executeCommand('rltab.restartServer'); // says why it cannot
        const switched = { enabled: config().get<boolean>('enable', true), snoozed: snoozedUntil > Date.now() };
        const pick = await vscode.window.showQuickPick(menuItems(status, workspaceFolder(), switched), {
          title: 'rltab',
        });
        if (pick !== undefined) await actions[pick.action]();
      }),
    ),
    vscode.commands.registerCommand('rltab.toggleLearning', guarded(actions.toggleLearning)),
    vscode.commands.registerCommand('rltab.trainNow', guarded(actions.trainNow)),
    vscode.commands.registerCommand('rltab.rollbackModel', guarded(actions.rollback)),
    vscode.commands.registerCommand('rltab.forgetRepo', guarded(actions.forgetRepo)),
    vscode.commands.registerCommand('rltab.openStats', guarded(actions.openStats)),
    vscode.commands.registerCommand('rltab.toggleEnabled', guarded(actions.toggleEnabled)),
    vscode.commands.registerCommand('rltab.snooze', guarded(actions.snooze)),
    vscode.commands.registerCommand('rltab.pickModel', guarded(actions.pickModel)),
    vscode.commands.registerCommand('rltab.showLearned', guarded(actions.showLearned)),
    vscode.commands.registerCommand('rltab.trigger', () =>
      vscode.commands.executeCommand('editor.action.inlineSuggest.trigger'),
    ),
  );

  // -- the language client -----------------------------------------------------------------------
  // Every file is synchronised (the workspace index reads them); whether to ask for a completion
  // is decided per request, so a model that knows other languages needs no restart.
  const paused = (document: vscode.TextDocument) => pauseReason(switches(), document.languageId, Date.now()) !== undefined;
  const timed = async <T>(ask: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    fetching += 1;
    render();
    try {
      return await ask();
    } finally {
      fetching -= 1;
      slow = Date.now() - t0 > SLOW_MS;
      render();
    }
  };
  /** Whether the server has answered `initialize` since it was last launched. */
  let answered = false;
  /** The last launch: what it wrote to stderr (the reason, when it stops as it starts) and its end. */
  let launched = { stderr: '', exited: Promise.resolve<number | null>(null) };
  let stopping = false; // stopped on purpose (a restart): not a failure
  const launch = (server: Command) => (): Promise<ChildProcess> => {
    answered = false;
    const child = spawn(server.command, server.args, { env: process.env });
    const run = { stderr: '', exited: Promise.resolve<number | null>(null) };
    run.exited = new Promise((done) => {
      child.on('exit', (code) => {
        done(code);
      });
      child.on('error', (e) => {
        run.stderr += `\n${e.message}`;
        done(null);
      });
    });
    child.stderr.on('data', (chunk: Buffer) => {
      run.stderr = (run.stderr + chunk.toString()).slice(-4000);
    });
    launched = run;
    return Promise.resolve(child);
  };
  /** One notification for a server that stopped as it started: why, and the fix. */
  const startFailed = async (serverPath: string) => {
    const timeout = new Promise<null>((done) => {
      setTimeout(() => {
        done(null);
      }, 3000);
    });
    const code = await Promise.race([launched.exited, timeout]);
    if (stopping) return;
    state = 'stopped';
    render();
    await failedToStart(startFailure(serverPath, code, launched.stderr), output);
  };
  const clientOptions = (defaults: () => ErrorHandler | undefined): LanguageClientOptions => ({
    documentSelector: [{ scheme: 'file' }, { scheme: 'untitled' }],
    initializationOptions: serverSettings(config()),
    synchronize: { configurationSection: 'rltab' },
    outputChannel: output,
    // A server that stops as it starts stops for good, with one notification saying why
    // (startFailed); one that crashes after running is restarted as usual.
    initializationFailedHandler: () => false,
    errorHandler: {
      error: (error, message, count) => defaults()?.error(error, message, count) ?? { action: ErrorAction.Shutdown },
      closed: () =>
        answered
          ? (defaults()?.closed() ?? { action: CloseAction.DoNotRestart })
          : { action: CloseAction.DoNotRestart, handled: true },
    },
    middleware: {
      // Ghost text only: a list item would open the suggest widget beside it and take Tab.
      provideCompletionItem: () => undefined,
      // Remember what is shown, so partial accepts and dismissals can name its id.
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        if (paused(document)) return undefined;
        const result = await timed(async () => next(document, position, context, token));
        const items = Array.isArray(result) ? result : (result?.items ?? []);
        const first = items[0];
        const id: unknown = first?.command?.arguments?.[0];
        if (first !== undefined && typeof first.insertText === 'string' && typeof id === 'string') {
          tracker.show({ id, uri: document.uri.toString(), offset: document.offsetAt(position), text: first.insertText });
        }
        return result;
      },
    },
  });
  /** Starts the server that `rltab.serverPath` names now (again after the setting changes). */
  const startClient = async (): Promise<void> => {
    const serverPath = config().get<string>('serverPath', 'rltab');
    const server = resolve(serverCommand(serverPath));
    stopping = false;
    if (server === undefined) {
      state = 'stopped';
      render();
      void missingServer(serverPath);
      return;
    }
    let defaults: ErrorHandler | undefined = undefined; // the client's own, made from the client
    const next = new RltabClient(launch(server), clientOptions(() => defaults), () => answered);
    defaults = next.createDefaultErrorHandler(4);
    client = next;
    clientSubscriptions.push(
      next.onNotification('rltab/status', (params: unknown) => {
        const update = parseStatus(params);
        if (update === undefined) return;
        const notice = updateNotice(status, update);
        status = update;
        render();
        if (notice !== undefined) void tell(notice.kind, notice.message);
      }),
      next.onDidChangeState((e) => {
        state = e.newState === State.Running ? 'running' : e.newState === State.Starting ? 'starting' : 'stopped';
        if (state === 'running') answered = true;
        void vscode.commands.executeCommand('setContext', 'rltab.serverRunning', state === 'running');
        if (state === 'running') sendPaused(); // a restarted server starts unpaused
        render();
      }),
    );
    try {
      await next.start();
    } catch (e) {
      output.error(`rltab: the server did not start: ${e instanceof Error ? e.message : String(e)}`);
      void startFailed(serverPath); // not awaited: activation must not wait on the user
    }
  };
  const clientSubscriptions: { dispose(): unknown }[] = [];
  const stopClient = async (): Promise<void> => {
    const old = client;
    client = undefined;
    stopping = true;
    for (const d of clientSubscriptions.splice(0)) d.dispose();
    if (old !== undefined && old.state !== State.Stopped) await old.stop().catch(() => undefined);
  };
  context.subscriptions.push(
    new vscode.Disposable(() => void stopClient()),
    vscode.commands.registerCommand(
      'rltab.restartServer',
      guarded(async () => {
        await stopClient();
        await startClient();
      }),
    ),
  );
  // Battery power: completions pause (the switches above) and the server holds the trainer.
  const sendPaused = () => {
    if (client === undefined || state !== 'running') return;
    void client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { rltab: { learning: { paused: trainingPaused(switches()) } } },
    });
  };
  const pollBattery = async () => {
    const now = config().get<boolean>('pauseOnBattery', true) ? await onBattery() : false;
    if (now !== battery) {
      battery = now;
      sendPaused();
      render();
    }
  };
  const poll = setInterval(() => void pollBattery(), BATTERY_POLL_MS);
  const tick = setInterval(() => {
    if (snoozedUntil > 0) render(); // the minutes left, and the end of a snooze
  }, 30_000);
  context.subscriptions.push(
    new vscode.Disposable(() => {
      clearInterval(poll);
      clearInterval(tick);
    }),
    vscode.window.onDidChangeActiveTextEditor(render),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('rltab.serverPath')) {
        void stopClient().then(startClient); // a server installed after the editor started
      } else if (e.affectsConfiguration('rltab')) {
        render();
        if (e.affectsConfiguration('rltab.pauseOnBattery')) void pollBattery().then(sendPaused);
      }
    }),
  );
  await startClient();
  await pollBattery();
  sendPaused();
}

/** The language client, quiet about a failed start: the extension explains that itself (startFailed). */
class RltabClient extends LanguageClient {
  constructor(
    server: ServerOptions,
    options: LanguageClientOptions,
    private readonly answered: () => boolean,
  ) {
    super('rltab', 'rltab', server, options);
  }

  override error(message: string, data?: unknown, showNotification?: boolean | 'force'): void {
    super.error(message, data, this.answered() ? showNotification : false);
  }
}

async function tell(kind: 'published' | 'refused', message: string): Promise<void> {
  const show = kind === 'published' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
  const learned = 'What did rltab learn?';
  if ((await show(message, learned)) === learned) await vscode.commands.executeCommand('rltab.showLearned');
}

export async function deactivate(): Promise<void> {
  await client?.stop();
  client = undefined;
}

async function failedToStart(message: string, output: vscode.LogOutputChannel): Promise<void> {
  output.error(message);
  const settings = 'Open settings';
  const log = 'Show log';
  const choice = await vscode.window.showErrorMessage(message, settings, log);
  if (choice === settings) await vscode.commands.executeCommand('workbench.action.openSettings', 'rltab.serverPath');
  else if (choice === log) output.show();
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


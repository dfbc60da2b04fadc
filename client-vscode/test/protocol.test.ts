/**
 * Drives a real `rltab serve` over stdio with Microsoft's protocol client, the way the extension's
 * language client does: inline-completion capabilities, a completion, the accept command and the
 * `rltab/status` notification. The server is `$RLTAB_SERVER`, else `rltab` on PATH.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import {
  createProtocolConnection,
  DidChangeConfigurationNotification,
  DidOpenTextDocumentNotification,
  ExecuteCommandRequest,
  InitializedNotification,
  InitializeRequest,
  InlineCompletionRequest,
  InlineCompletionTriggerKind,
  type InlineCompletionItem,
  type ProtocolConnection,
  ResponseError,
  ShutdownRequest,
  ExitNotification,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-languageserver-protocol/node';

import { findExecutable, serverCommand } from '../src/serverCommand';
import { parseStatus, type RltabStatus } from '../src/status';

// Documents ending at the cursor; the first one the shipped model answers is used (the model keeps
// learning, so which one varies). Same list as tests/helpers.py COMPLETABLE.
const COMPLETABLE = [
  'class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.',
  'class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y',
  'class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = ',
  'import os\n\n\ndef read(path):\n    with open(path) as f:\n        return f.',
  'def add(a, b):\n    return ',
  'import os\n\n\ndef main(args):\n    print(',
];

let home: string;
let proc: ChildProcess;
let conn: ProtocolConnection;
const statuses: RltabStatus[] = [];

function nextStatus(predicate: (s: RltabStatus) => boolean, timeoutMs = 60_000): Promise<RltabStatus> {
  return new Promise((resolve, reject) => {
    const seen = statuses.find(predicate);
    if (seen !== undefined) {
      resolve(seen);
      return;
    }
    const timer = setTimeout(() => {
      clearInterval(poll);
      reject(new Error(`no matching rltab/status; got ${JSON.stringify(statuses)}`));
    }, timeoutMs);
    const poll = setInterval(() => {
      const s = statuses.find(predicate);
      if (s !== undefined) {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(s);
      }
    }, 20);
  });
}

before(async () => {
  const exe = process.env.RLTAB_SERVER ?? 'rltab';
  const isFile = (p: string) => fs.existsSync(p) && fs.statSync(p).isFile();
  const found = findExecutable(exe, process.env, process.platform, isFile);
  assert.ok(found, `cannot find the rltab server (${exe}); install it with pip install -e . first`);
  const cmd = serverCommand(found);
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'rltab-vscode-'));
  proc = spawn(cmd.command, [...cmd.args, '--home', home], { stdio: ['pipe', 'pipe', 'ignore'] });
  if (proc.stdout === null || proc.stdin === null) throw new Error('no pipes to the server');
  conn = createProtocolConnection(new StreamMessageReader(proc.stdout), new StreamMessageWriter(proc.stdin));
  conn.onNotification('rltab/status', (params: unknown) => {
    const s = parseStatus(params);
    if (s !== undefined) statuses.push(s);
  });
  conn.listen();
  const init = await conn.sendRequest(InitializeRequest.type, {
    processId: process.pid,
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- still required by InitializeParams
    rootUri: null,
    workspaceFolders: null,
    capabilities: {
      textDocument: { inlineCompletion: { dynamicRegistration: false }, synchronization: { dynamicRegistration: false } },
      workspace: { configuration: false, didChangeConfiguration: { dynamicRegistration: false } },
    },
    initializationOptions: { learning: { enabled: true }, maxLines: 4 },
  });
  assert.ok(init.capabilities.inlineCompletionProvider, 'the server advertises inline completion');
  assert.deepEqual(
    [...(init.capabilities.executeCommandProvider?.commands ?? [])].sort(),
    ['rltab.accepted', 'rltab.partiallyAccepted', 'rltab.rejected', 'rltab.rollback', 'rltab.train'],
  );
  await conn.sendNotification(InitializedNotification.type, {});
});

after(async () => {
  try {
    await conn.sendRequest(ShutdownRequest.type);
    await conn.sendNotification(ExitNotification.type);
  } finally {
    conn.dispose();
    proc.kill();
    fs.rmSync(home, { recursive: true, force: true });
  }
});

async function complete(uri: string, text: string): Promise<InlineCompletionItem[]> {
  await conn.sendNotification(DidOpenTextDocumentNotification.type, {
    textDocument: { uri, languageId: 'python', version: 1, text: text + '\n' },
  });
  const lines = text.split('\n');
  const result = await conn.sendRequest(InlineCompletionRequest.type, {
    textDocument: { uri },
    position: { line: lines.length - 1, character: (lines[lines.length - 1] ?? '').length },
    context: { triggerKind: InlineCompletionTriggerKind.Automatic },
  });
  return Array.isArray(result) ? result : (result?.items ?? []);
}

test('inline completion, then the accept command, then a status with the accept', async () => {
  let item: InlineCompletionItem | undefined;
  for (const [i, text] of COMPLETABLE.entries()) {
    [item] = await complete(`file:///tmp/rltab-vscode/doc${i}.py`, text);
    if (item !== undefined) break;
  }
  assert.ok(item, 'the shipped model answers one of the documents');
  assert.equal(typeof item.insertText, 'string');
  assert.ok((item.insertText as string).length > 0);
  assert.equal(item.command?.command, 'rltab.accepted');
  const id: unknown = item.command.arguments?.[0];
  assert.equal(typeof id, 'string');

  await conn.sendRequest(ExecuteCommandRequest.type, { command: 'rltab.accepted', arguments: [id] });
  const status = await nextStatus((s) => s.acceptRate > 0);
  assert.equal(status.learning, true);
  assert.match(status.modelVersion, /\S/);
  // What the switches and notices read: the starter knows Python only, no cycle has run.
  assert.deepEqual(status.languages, ['python']);
  assert.equal(status.training, false);
  assert.equal(status.lastUpdate, null);
});

test('bad command arguments get an error response and the server lives on', async () => {
  const invalid = (e: unknown) => e instanceof ResponseError && e.code === -32602; // InvalidParams
  await assert.rejects(
    conn.sendRequest(ExecuteCommandRequest.type, { command: 'rltab.partiallyAccepted', arguments: ['no-such-id', 3] }),
    (e: unknown) => invalid(e) && /unknown suggestion id/.test((e as Error).message),
  );
  await assert.rejects(
    conn.sendRequest(ExecuteCommandRequest.type, { command: 'rltab.rejected', arguments: [] }),
    invalid,
  );
  const [item] = await complete('file:///tmp/rltab-vscode/after-errors.py', 'import os\n\n\ndef main(args):\n    print(');
  assert.ok(item === undefined || typeof item.insertText === 'string', 'still answering');
});

test('turning learning off through didChangeConfiguration shows in the status', async () => {
  statuses.length = 0;
  await conn.sendNotification(DidChangeConfigurationNotification.type, { settings: { rltab: { learning: { enabled: false } } } });
  const status = await nextStatus((s) => !s.learning);
  assert.equal(status.learning, false);
});

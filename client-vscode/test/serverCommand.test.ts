import assert from 'node:assert/strict';
import { test } from 'node:test';

import { findExecutable, rltabCommand, serverCommand, startFailure } from '../src/serverCommand';

test('the rltab executable gets `serve`', () => {
  assert.deepEqual(serverCommand('rltab'), { command: 'rltab', args: ['serve'] });
  assert.deepEqual(serverCommand('/opt/venv/bin/rltab'), { command: '/opt/venv/bin/rltab', args: ['serve'] });
  assert.deepEqual(serverCommand('  '), { command: 'rltab', args: ['serve'] });
});

test('a Python interpreter runs the module', () => {
  for (const py of ['python', 'python3', 'python3.11', '/usr/bin/python3', 'C:\\Py\\python.exe', 'py.exe']) {
    assert.deepEqual(serverCommand(py).args, ['-m', 'rltab.server.cli', 'serve'], py);
  }
  assert.deepEqual(rltabCommand('python3', ['stats', '--json']).args, ['-m', 'rltab.server.cli', 'stats', '--json']);
  assert.deepEqual(serverCommand('pythonista').args, ['serve']);
});

test('bare names are looked up on PATH, in order', () => {
  const files = new Set(['/b/rltab', '/c/rltab']);
  const isFile = (p: string) => files.has(p);
  assert.equal(findExecutable('rltab', { PATH: '/a:/b:/c' }, 'linux', isFile), '/b/rltab');
  assert.equal(findExecutable('rltab', { PATH: '/a' }, 'linux', isFile), undefined);
  assert.equal(findExecutable('rltab', {}, 'linux', isFile), undefined);
});

test('paths are checked as given, with ~ expanded', () => {
  const isFile = (p: string) => p === '/home/u/.venv/bin/rltab';
  assert.equal(findExecutable('~/.venv/bin/rltab', { HOME: '/home/u' }, 'linux', isFile), '/home/u/.venv/bin/rltab');
  assert.equal(findExecutable('/home/u/.venv/bin/rltab', {}, 'linux', isFile), '/home/u/.venv/bin/rltab');
  assert.equal(findExecutable('./rltab', { PATH: '/home/u/.venv/bin' }, 'linux', isFile), undefined);
});

test('Windows tries PATHEXT', () => {
  const isFile = (p: string) => p === 'C:\\tools\\rltab.EXE';
  assert.equal(findExecutable('rltab', { PATH: 'C:\\x;C:\\tools', PATHEXT: '.COM;.EXE' }, 'win32', isFile), 'C:\\tools\\rltab.EXE');
});

test('a server that stops as it starts is explained: why, from its stderr, and the fix', () => {
  const noModule = startFailure('/usr/bin/python3', 1, 'Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module named \'rltab\'\n');
  assert.match(noModule, /"\/usr\/bin\/python3" is a Python without rltab/);
  assert.match(noModule, /pip install -e \./);
  const flag = startFailure('rltab', 2, 'rltab: unrecognized arguments: --bogus (see `rltab serve --help`)\n');
  assert.match(flag, /stopped as it started: rltab: unrecognized arguments: --bogus/);
  assert.match(startFailure('rltab', 3, ''), /\(exit code 3\)/);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { menuItems } from '../src/menu';
import { serverSettings } from '../src/settings';
import { parseStatus, statusText, statusTooltip } from '../src/status';

const STATUS = { modelVersion: 'v0003', learning: true, acceptRate: 0.234, pendingEvents: 12 };

test('status notifications are validated', () => {
  assert.deepEqual(parseStatus({ ...STATUS, extra: 1 }), STATUS);
  assert.equal(parseStatus(null), undefined);
  assert.equal(parseStatus({ ...STATUS, acceptRate: '23%' }), undefined);
  assert.equal(parseStatus([1, 2]), undefined);
});

test('the status bar shows version, learning and accept rate', () => {
  assert.equal(statusText(STATUS, 'running'), '$(mortar-board) rltab v0003 · learning · 23%');
  assert.equal(statusText({ ...STATUS, learning: false, acceptRate: 1.5 }, 'running'), '$(sparkle) rltab v0003 · 100%');
  assert.equal(statusText(undefined, 'running'), '$(loading~spin) rltab');
  assert.equal(statusText(STATUS, 'stopped'), '$(circle-slash) rltab');
  assert.match(statusTooltip(STATUS, 'running'), /Events waiting for the next update: 12/);
  assert.doesNotMatch(statusTooltip({ ...STATUS, learning: false }, 'running'), /Events waiting/);
});

test('the menu offers training only while learning, forgetting only in a folder', () => {
  const on = menuItems(STATUS, '/src/repo').map((i) => i.action);
  assert.deepEqual(on, ['toggleLearning', 'trainNow', 'rollback', 'forgetRepo', 'openStats', 'showLog']);
  const off = menuItems({ ...STATUS, learning: false }, undefined).map((i) => i.action);
  assert.deepEqual(off, ['toggleLearning', 'rollback', 'openStats', 'showLog']);
  assert.match(menuItems(undefined, undefined)[0]?.label ?? '', /Turn learning on/);
});

test('settings sent to the server carry only what the user set', () => {
  const values: Record<string, unknown> = { 'learning.enabled': true, maxLines: 4, serverPath: 'rltab' };
  const config = { get: (key: string) => values[key] };
  assert.deepEqual(serverSettings(config), { learning: { enabled: true }, maxLines: 4 });
  assert.deepEqual(serverSettings({ get: () => undefined }), { learning: { enabled: false } });
});

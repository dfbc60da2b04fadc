import assert from 'node:assert/strict';
import { test } from 'node:test';

import { menuItems } from '../src/menu';
import { serverSettings } from '../src/settings';
import { parseStatus, statusText, statusTooltip, updateNotice } from '../src/status';

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

test('the menu offers training only while learning, forgetting only in a folder, snoozing only when on', () => {
  const on = menuItems(STATUS, '/src/repo').map((i) => i.action);
  assert.deepEqual(on, [
    'toggleEnabled',
    'snooze',
    'toggleLearning',
    'trainNow',
    'pickModel',
    'showLearned',
    'forgetRepo',
    'openStats',
    'showLog',
  ]);
  const off = menuItems({ ...STATUS, learning: false }, undefined, { enabled: false, snoozed: false }).map((i) => i.action);
  assert.deepEqual(off, ['toggleEnabled', 'toggleLearning', 'pickModel', 'showLearned', 'openStats', 'showLog']);
  assert.match(menuItems(undefined, undefined)[2]?.label ?? '', /Turn learning on/);
  assert.match(menuItems(STATUS, undefined, { enabled: true, snoozed: true })[1]?.label ?? '', /Resume/);
});

test('the status bar names the state that matters: off, snoozed, battery, language, fetching, slow, training', () => {
  const now = 1_000_000;
  assert.equal(statusText(STATUS, 'running', { pause: 'disabled' }), '$(circle-slash) rltab off');
  assert.equal(
    statusText(STATUS, 'running', { pause: 'snoozed', snoozedUntil: now + 29.5 * 60_000, now }),
    '$(debug-pause) rltab snoozed 30 min',
  );
  assert.equal(statusText(STATUS, 'running', { pause: 'battery' }), '$(debug-pause) rltab paused on battery');
  assert.equal(statusText(STATUS, 'running', { pause: 'language', languageId: 'json' }), '$(circle-slash) rltab · off for json');
  assert.match(statusTooltip({ ...STATUS, languages: ['python'] }, 'running', { pause: 'language', languageId: 'json' }), /knows python/);
  assert.equal(statusText(STATUS, 'running', { fetching: true }), '$(loading~spin) rltab v0003');
  assert.equal(statusText(STATUS, 'running', { slow: true }), '$(mortar-board) rltab v0003 · learning · slow · 23%');
  assert.equal(statusText({ ...STATUS, training: true }, 'running'), '$(sync~spin) rltab v0003 · training · 23%');
  assert.match(statusTooltip({ ...STATUS, learningPaused: true }, 'running'), /training paused/);
});

test('the extra status fields are read when present and well-formed, dropped otherwise', () => {
  const last = { id: 3, time: 1.5, version: null, parent: 'v0002', reason: 'guard: held-out loss up', repo: '/r' };
  const full = parseStatus({ ...STATUS, languages: ['python'], training: true, learningPaused: false, lastUpdate: last });
  assert.deepEqual(full, {
    ...STATUS,
    languages: ['python'],
    training: true,
    learningPaused: false,
    lastUpdate: { id: 3, time: 1.5, version: null, parent: 'v0002', reason: 'guard: held-out loss up' },
  });
  assert.deepEqual(parseStatus({ ...STATUS, languages: [1], lastUpdate: { id: 'x' } }), STATUS);
  assert.deepEqual(parseStatus({ ...STATUS, languages: null, lastUpdate: null }), { ...STATUS, languages: null, lastUpdate: null });
});

test('a notification when a version goes live or an update is refused, once, and not for old news', () => {
  const published = { id: 4, time: 2, version: 'v0004', parent: 'v0003', reason: 'published' };
  const refused = { id: 5, time: 3, version: null, parent: 'v0004', reason: 'guard: held-out loss 3.6 > parent 3.5 + 1%' };
  assert.equal(updateNotice(undefined, { ...STATUS, lastUpdate: published }), undefined); // at start-up
  const live = updateNotice({ ...STATUS, lastUpdate: null }, { ...STATUS, lastUpdate: published });
  assert.equal(live?.kind, 'published');
  assert.match(live.message, /v0004 is live/);
  const no = updateNotice({ ...STATUS, lastUpdate: published }, { ...STATUS, lastUpdate: refused });
  assert.equal(no?.kind, 'refused');
  assert.match(no.message, /held-out loss 3\.6/);
  assert.equal(updateNotice({ ...STATUS, lastUpdate: refused }, { ...STATUS, lastUpdate: refused }), undefined);
});

test('settings sent to the server carry only what the user set', () => {
  const values: Record<string, unknown> = {
    'learning.enabled': true,
    maxLines: 4,
    threads: 3,
    context: false,
    serverPath: 'rltab',
  };
  const config = { get: (key: string) => values[key] };
  assert.deepEqual(serverSettings(config), { learning: { enabled: true }, maxLines: 4, threads: 3, context: false });
  assert.deepEqual(serverSettings({ get: () => undefined }), { learning: { enabled: false } });
});

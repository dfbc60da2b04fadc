import assert from 'node:assert/strict';
import { test } from 'node:test';

import { linuxOnBattery, macOnBattery, windowsOnBattery } from '../src/battery';
import { languageEnabled, pauseReason, SNOOZE_MS, trainingPaused, type Switches } from '../src/switches';

const ON: Switches = {
  enabled: true,
  snoozedUntil: 0,
  pauseOnBattery: true,
  onBattery: false,
  languages: {},
  modelLanguages: ['python'],
};

test("languages default to the model's, and the user's word wins", () => {
  assert.ok(languageEnabled(ON, 'python'));
  for (const other of ['json', 'jsonc', 'markdown', 'plaintext']) assert.ok(!languageEnabled(ON, other), other);
  assert.ok(languageEnabled({ ...ON, modelLanguages: null }, 'markdown')); // a model that does not say
  assert.ok(languageEnabled({ ...ON, languages: { '*': true } }, 'rust'));
  assert.ok(!languageEnabled({ ...ON, languages: { '*': true, markdown: false } }, 'markdown'));
  assert.ok(!languageEnabled({ ...ON, languages: { python: false } }, 'python'));
  assert.ok(languageEnabled({ ...ON, languages: { go: true } }, 'go'));
  assert.ok(languageEnabled({ ...ON, languages: { go: 'yes' } }, 'python')); // a non-boolean is ignored
});

test('the first reason completions are off: disabled, snoozed, battery, language', () => {
  const now = 1_000_000;
  assert.equal(pauseReason(ON, 'python', now), undefined);
  assert.equal(pauseReason({ ...ON, enabled: false, snoozedUntil: now + 1 }, 'python', now), 'disabled');
  assert.equal(pauseReason({ ...ON, snoozedUntil: now + SNOOZE_MS }, 'python', now), 'snoozed');
  assert.equal(pauseReason({ ...ON, snoozedUntil: now - 1 }, 'python', now), undefined); // a snooze ends by itself
  assert.equal(pauseReason({ ...ON, onBattery: true }, 'python', now), 'battery');
  assert.equal(pauseReason({ ...ON, onBattery: true, pauseOnBattery: false }, 'python', now), undefined);
  assert.equal(pauseReason(ON, 'json', now), 'language');
  assert.ok(trainingPaused({ pauseOnBattery: true, onBattery: true }));
  assert.ok(!trainingPaused({ pauseOnBattery: false, onBattery: true }));
});

test('battery power is read from each platform', () => {
  assert.ok(linuxOnBattery([{ type: 'Mains\n', online: '0\n' }, { type: 'Battery\n' }]));
  assert.ok(!linuxOnBattery([{ type: 'Mains\n', online: '1\n' }, { type: 'Battery\n' }]));
  assert.ok(!linuxOnBattery([])); // a desktop or a container: no supplies at all
  assert.ok(macOnBattery("Now drawing from 'Battery Power'\n -InternalBattery-0 (id=1)\t87%; discharging;"));
  assert.ok(!macOnBattery("Now drawing from 'AC Power'\n -InternalBattery-0\t100%; charged;"));
  assert.ok(windowsOnBattery('1\r\n'));
  assert.ok(!windowsOnBattery('2\r\n'));
  assert.ok(!windowsOnBattery(''));
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

// The extension's manifest, as VS Code reads it (compiled tests run from out/test/).
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: {
    commands: { command: string }[];
    keybindings: { command: string; key: string; mac?: string }[];
    configuration: { properties: Record<string, { scope?: string; ignoreSync?: boolean; enum?: string[]; default?: unknown }> };
    walkthroughs: { steps: { id: string; media: { markdown: string }; description: string }[] }[];
  };
  capabilities: { untrustedWorkspaces: { supported: string; restrictedConfigurations: string[] } };
};
const { commands, keybindings, configuration, walkthroughs } = manifest.contributes;

test('every bound command is declared (so it shows in the palette and keybinding editor)', () => {
  const declared = new Set(commands.map((c) => c.command));
  for (const k of keybindings) assert.ok(declared.has(k.command), k.command);
  for (const c of ['rltab.restartServer', 'rltab.trigger', 'rltab.acceptNextWord', 'rltab.acceptNextLine', 'rltab.dismiss']) {
    assert.ok(declared.has(c), c);
  }
});

test("keybindings leave VS Code's own editor navigation alone", () => {
  const taken = keybindings.flatMap((k) => [k.key, k.mac ?? '']);
  for (const own of ['ctrl+alt+right', 'cmd+alt+right']) assert.ok(!taken.includes(own), own);
  assert.ok(keybindings.some((k) => k.command === 'rltab.trigger' && k.key === 'alt+\\'));
});

test('the server path is set in User (or Remote) settings, never synced, and untrusted workspaces cannot choose it', () => {
  const props = configuration.properties;
  // machine(-overridable) scope hides it from the User tab in any remote window, code-server's too.
  assert.equal(props['rltab.serverPath']?.scope, 'window');
  assert.equal(props['rltab.serverPath'].ignoreSync, true);
  assert.deepEqual(props['rltab.trace.server']?.enum, ['off', 'messages', 'verbose']);
  const untrusted = manifest.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, 'limited');
  assert.ok(untrusted.restrictedConfigurations.includes('rltab.serverPath'));
});

test('the switches are settings: global enable, per-language (following the model), pause on battery', () => {
  const props = configuration.properties;
  assert.equal(props['rltab.enable']?.default, true);
  assert.deepEqual(props['rltab.languages']?.default, {});
  assert.equal(props['rltab.pauseOnBattery']?.default, true);
  const declared = new Set(commands.map((c) => c.command));
  for (const c of ['rltab.toggleEnabled', 'rltab.snooze', 'rltab.pickModel', 'rltab.showLearned']) assert.ok(declared.has(c), c);
});

test('the walkthrough goes install, model, try Tab, opt in, and every page it shows ships', () => {
  const [walk] = walkthroughs;
  assert.deepEqual(
    walk?.steps.map((s) => s.id),
    ['install', 'model', 'try', 'learn'],
  );
  const root = join(__dirname, '..', '..');
  const ignore = readFileSync(join(root, '.vscodeignore'), 'utf8');
  assert.match(ignore, /^!media\/\*\*$/m);
  for (const step of walk.steps) {
    assert.ok(readFileSync(join(root, step.media.markdown), 'utf8').startsWith('# '), step.media.markdown);
  }
  const declared = new Set(commands.map((c) => c.command));
  for (const step of walk.steps) {
    for (const [, cmd] of step.description.matchAll(/\(command:(rltab\.[A-Za-z]+)/g)) assert.ok(declared.has(cmd ?? ''), cmd);
  }
});

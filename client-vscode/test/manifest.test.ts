import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

// The extension's manifest, as VS Code reads it (compiled tests run from out/test/).
const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
  contributes: {
    commands: { command: string }[];
    keybindings: { command: string; key: string; mac?: string }[];
    configuration: { properties: Record<string, { scope?: string; enum?: string[] }> };
  };
  capabilities: { untrustedWorkspaces: { supported: string; restrictedConfigurations: string[] } };
};
const { commands, keybindings, configuration } = manifest.contributes;

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

test('the server path is a machine setting and untrusted workspaces cannot choose it', () => {
  const props = configuration.properties;
  assert.equal(props['rltab.serverPath']?.scope, 'machine-overridable');
  assert.deepEqual(props['rltab.trace.server']?.enum, ['off', 'messages', 'verbose']);
  const untrusted = manifest.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, 'limited');
  assert.ok(untrusted.restrictedConfigurations.includes('rltab.serverPath'));
});

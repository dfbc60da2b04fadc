import assert from 'node:assert/strict';
import { test } from 'node:test';

import { escapeHtml, learnedHtml, type LearnedEntry } from '../src/learnedView';
import { versionItems } from '../src/menu';

const STARTER: LearnedEntry = {
  version: 'starter',
  live: false,
  date: null,
  parent: null,
  repo: null,
  events: null,
  outcomes: {},
  guard: {},
  before: null,
  after: { version: 'starter', shown: 40, accept_rate: 0.2, chars_accepted: 120, chars_per_shown: 3 },
  refused: [{ date: '2026-11-26 10:00', reason: 'guard: held-out loss 3.6 > parent 3.5 + 1%', events: 64 }],
  examples: [],
};
const V1: LearnedEntry = {
  ...STARTER,
  version: 'v0001',
  live: true,
  date: '2026-11-26 11:00',
  parent: 'starter',
  repo: '/src/app',
  events: 64,
  outcomes: { accepted: 20, rejected: 44 },
  guard: { reason: 'ok', heldout_loss: 3.41, parent_heldout_loss: 3.43 },
  before: STARTER.after,
  after: { version: 'v0001', shown: 10, accept_rate: 0.3, chars_accepted: 50, chars_per_shown: 5, chars_saved_per_100: 12.5 },
  refused: [],
  examples: [
    {
      file: 'a.py',
      context: 'if x < 3:\n    return <b>',
      then_version: 'starter',
      then: "'a'",
      outcome: 'rejected',
      user_wrote: '"b"',
      now: '"b"',
    },
  ],
};

test('the learned view shows each version newest first, with its figures, refusals and examples', () => {
  const html = learnedHtml([STARTER, V1], '/src/app');
  assert.ok(html.indexOf('v0001') < html.indexOf('<h2>starter'));
  assert.match(html, /Trained on 64 events: 20 accepted, 44 rejected/);
  assert.match(html, /held-out loss<\/td><td>3\.410<\/td><td>3\.430/);
  assert.match(html, /before<\/td><td>starter<\/td><td>40<\/td><td>20\.0%<\/td><td>3\.0<\/td><td>–/);
  assert.match(html, /after<\/td><td>v0001<\/td><td>10<\/td><td>30\.0%<\/td><td>5\.0<\/td><td>12\.5/);
  assert.match(html, /Refused an update from it on 2026-11-26 10:00 \(64 events\): guard: held-out loss 3\.6/);
  assert.match(html, /you wrote <code>&quot;b&quot;<\/code>/);
  assert.ok(!html.includes('<b>'), 'code from the ledger is escaped, never markup');
  assert.match(html, /default-src 'none'/);
});

test('with nothing trained the view says how learning starts', () => {
  assert.match(learnedHtml([{ ...STARTER, refused: [] }], 'all repositories'), /Nothing learned yet/);
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('the model picker lists versions newest first, the live one checked, with what each did', () => {
  const items = versionItems([
    { version: 'starter', current: false, date: null, parent: null, events: null, shown: 40, accept_rate: 0.2, chars_accepted: 120 },
    { version: 'v0001', current: true, date: '2026-11-26 11:00', parent: 'starter', events: 64, shown: 10, accept_rate: 0.3, chars_accepted: 50 },
  ]);
  assert.deepEqual(
    items.map((i) => i.label),
    ['$(check) v0001', 'starter'],
  );
  assert.equal(items[0]?.description, '2026-11-26 11:00 · from starter · 64 events');
  assert.equal(items[1]?.detail, '40 shown · 20% taken · 120 chars accepted');
  assert.equal(items[0].version, 'v0001');
});

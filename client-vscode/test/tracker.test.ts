import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SuggestionTracker } from '../src/tracker';

const URI = 'file:///a.py';
/** The document `before` + what the user typed so far, suggestion shown at the end of `before`. */
function setup(before: string, suggestion: string) {
  const tracker = new SuggestionTracker();
  tracker.show({ id: 's1', uri: URI, offset: before.length, text: suggestion });
  let doc = before;
  const read = (a: number, b: number) => doc.slice(a, b);
  return {
    tracker,
    read,
    /** Insert at the end, as typing or an accept does; returns the cursor after it. */
    type(text: string) {
      doc += text;
      return doc.length;
    },
  };
}

test('a whole accept reports nothing (VS Code runs the item command) and ends tracking', () => {
  const t = setup('x = ', 'foo(1)');
  assert.deepEqual(t.tracker.edited(URI, t.type('foo(1)'), t.read), []);
  assert.equal(t.tracker.pending, undefined);
});

test('typing the suggestion through by hand is left to the server', () => {
  const t = setup('x = ', 'foo');
  assert.deepEqual(t.tracker.edited(URI, t.type('f'), t.read), []);
  assert.deepEqual(t.tracker.edited(URI, t.type('o'), t.read), []);
  assert.notEqual(t.tracker.pending, undefined);
  assert.deepEqual(t.tracker.edited(URI, t.type('o'), t.read), []);
  assert.equal(t.tracker.pending, undefined);
});

test('typing something else rejects', () => {
  const t = setup('x = ', 'foo');
  assert.deepEqual(t.tracker.edited(URI, t.type('f'), t.read), []);
  assert.deepEqual(t.tracker.edited(URI, t.type('x'), t.read), [{ command: 'rltab.rejected', args: ['s1'] }]);
  assert.equal(t.tracker.pending, undefined);
  assert.deepEqual(t.tracker.edited(URI, t.type('y'), t.read), [], 'reported once');
});

test('deleting back over the start rejects', () => {
  const t = setup('x = ', 'foo');
  assert.deepEqual(t.tracker.edited(URI, 3, t.read), [{ command: 'rltab.rejected', args: ['s1'] }]);
});

test('escape rejects once', () => {
  const t = setup('x = ', 'foo');
  assert.deepEqual(t.tracker.dismissed(), [{ command: 'rltab.rejected', args: ['s1'] }]);
  assert.deepEqual(t.tracker.dismissed(), []);
});

test('word-by-word partial accepts report growing lengths, then the whole accept', () => {
  const t = setup('', 'self.x = x');
  assert.deepEqual(t.tracker.partiallyAccepted(URI, t.type('self.'), t.read), [
    { command: 'rltab.partiallyAccepted', args: ['s1', 5] },
  ]);
  // the change event for the same edit arrives after the command: still on the suggestion
  assert.deepEqual(t.tracker.edited(URI, 5, t.read), []);
  assert.deepEqual(t.tracker.partiallyAccepted(URI, 5, t.read), [], 'no progress, no report');
  assert.deepEqual(t.tracker.partiallyAccepted(URI, t.type('x = '), t.read), [
    { command: 'rltab.partiallyAccepted', args: ['s1', 9] },
  ]);
  assert.deepEqual(t.tracker.partiallyAccepted(URI, t.type('x'), t.read), [{ command: 'rltab.accepted', args: ['s1'] }]);
  assert.equal(t.tracker.pending, undefined);
});

test('after a partial accept, typing elsewhere closes without a rejection', () => {
  const t = setup('', 'self.x = x');
  t.tracker.partiallyAccepted(URI, t.type('self.'), t.read);
  assert.deepEqual(t.tracker.edited(URI, t.type('y'), t.read), []);
  assert.equal(t.tracker.pending, undefined);
  assert.deepEqual(t.tracker.dismissed(), []);
});

test('edits in another document are ignored; a new suggestion supersedes the old', () => {
  const t = setup('x = ', 'foo');
  assert.deepEqual(t.tracker.edited('file:///other.py', 99, t.read), []);
  t.tracker.show({ id: 's2', uri: URI, offset: 4, text: 'bar' });
  assert.deepEqual(t.tracker.dismissed(), [{ command: 'rltab.rejected', args: ['s2'] }]);
});

test('an empty suggestion is never tracked', () => {
  const tracker = new SuggestionTracker();
  tracker.show({ id: 's1', uri: URI, offset: 0, text: '' });
  assert.equal(tracker.pending, undefined);
  assert.deepEqual(tracker.dismissed(), []);
});

test('multi-line suggestions are matched across lines', () => {
  const t = setup('def f():\n', '    return 1\n\nx = f()');
  assert.deepEqual(t.tracker.partiallyAccepted(URI, t.type('    return 1\n'), t.read), [
    { command: 'rltab.partiallyAccepted', args: ['s1', 13] },
  ]);
});

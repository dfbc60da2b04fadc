/**
 * The fate of the suggestion on screen, told to the server as explicit outcomes (architecture.md §3).
 *
 * Pure: the extension feeds it what was shown and what the document looks like after each edit;
 * it answers which `rltab.*` commands to send. Whole accepts need nothing from here (VS Code runs
 * the item's own `rltab.accepted` command); typing a suggestion through by hand is left to the
 * server's own inference. This reports the two things the server cannot see from edits alone:
 * partial accepts by word/line and dismissals (Escape, or typing something else).
 */

export interface Shown {
  id: string;
  uri: string;
  /** Document offset where the suggestion starts (the cursor when it was requested). */
  offset: number;
  text: string;
}

export interface Report {
  command: 'rltab.accepted' | 'rltab.partiallyAccepted' | 'rltab.rejected';
  args: [string] | [string, number];
}

/** Reads the document between two offsets (clamped to its end). */
export type Reader = (start: number, end: number) => string;

export class SuggestionTracker {
  private current: Shown | undefined;
  private reportedChars = 0;

  get pending(): Shown | undefined {
    return this.current;
  }

  /** A new suggestion is on screen; one still pending is superseded and left to the server. */
  show(shown: Shown): void {
    this.current = shown.text ? shown : undefined;
    this.reportedChars = 0;
  }

  /**
   * After an edit to `uri` that left the cursor at `cursor`. While the text from the suggestion's
   * start to the cursor is a prefix of the suggestion the user is still on it; anything else
   * dismisses it (rejected, unless part of it was already taken).
   */
  edited(uri: string, cursor: number, read: Reader): Report[] {
    const s = this.current;
    if (s === undefined || uri !== s.uri) return [];
    const taken = this.takenLength(cursor, read);
    if (taken === undefined) return this.close(true);
    if (taken === s.text.length) return this.close(false); // accepted or typed through
    return [];
  }

  /** After a word/line partial accept: report how much of the suggestion now stands. */
  partiallyAccepted(uri: string, cursor: number, read: Reader): Report[] {
    const s = this.current;
    if (s === undefined || uri !== s.uri) return [];
    const taken = this.takenLength(cursor, read);
    if (taken === undefined || taken <= this.reportedChars) return [];
    if (taken === s.text.length) {
      this.current = undefined;
      return [{ command: 'rltab.accepted', args: [s.id] }];
    }
    this.reportedChars = taken;
    return [{ command: 'rltab.partiallyAccepted', args: [s.id, taken] }];
  }

  /** Escape, or the suggestion hidden on purpose. */
  dismissed(): Report[] {
    return this.current === undefined ? [] : this.close(true);
  }

  private takenLength(cursor: number, read: Reader): number | undefined {
    const s = this.current as Shown;
    const taken = cursor - s.offset;
    if (taken < 0 || taken > s.text.length) return undefined;
    return read(s.offset, cursor) === s.text.slice(0, taken) ? taken : undefined;
  }

  private close(rejected: boolean): Report[] {
    const s = this.current as Shown;
    this.current = undefined;
    // A rejection after a partial accept would not undo it on the server; spare the message.
    return rejected && this.reportedChars === 0 ? [{ command: 'rltab.rejected', args: [s.id] }] : [];
  }
}

/** "What did rltab learn?": `rltab learned --json` as HTML for a webview. Pure. */

export interface Usage {
  version: string;
  shown: number;
  accept_rate: number;
  chars_accepted: number;
  chars_per_shown: number;
  chars_saved_per_100?: number | null;
}

export interface Example {
  file: string | null;
  context: string;
  then_version: string;
  then: string;
  outcome: string;
  user_wrote: string | null;
  now: string;
}

export interface LearnedEntry {
  version: string;
  live: boolean;
  date: string | null;
  parent: string | null;
  repo: string | null;
  events: number | null;
  outcomes: Record<string, number>;
  guard: Record<string, string | number>;
  before: Usage | null;
  after: Usage | null;
  refused: { date: string | null; reason: string; events: number }[];
  examples: Example[];
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const GUARD: [string, string, string][] = [
  ['held-out loss', 'heldout_loss', 'parent_heldout_loss'],
  ['demonstration loss', 'demonstration_nll', 'parent_demonstration_nll'],
  ['reward-weighted log-likelihood', 'reward_weighted_ll', 'parent_reward_weighted_ll'],
];

function fmt(x: unknown): string {
  return typeof x === 'number' ? x.toPrecision(4) : '–';
}

function usageCells(u: Usage | null): string {
  if (u === null) return '<td>–</td><td>–</td><td>–</td><td>–</td>';
  const saved = typeof u.chars_saved_per_100 === 'number' ? u.chars_saved_per_100.toFixed(1) : '–';
  return `<td>${u.shown}</td><td>${(100 * u.accept_rate).toFixed(1)}%</td><td>${u.chars_per_shown.toFixed(1)}</td><td>${saved}</td>`;
}

function entryHtml(e: LearnedEntry): string {
  const h = escapeHtml;
  const title = `${h(e.version)}${e.live ? ' <span class="live">live</span>' : ''}`;
  const meta = [e.date ?? 'shipped', e.parent ? `from ${e.parent}` : '', e.repo ?? ''].filter(Boolean).map(h).join(' · ');
  const parts = [`<h2>${title}</h2><p class="meta">${meta}</p>`];
  if (e.events !== null) {
    const outcomes = Object.entries(e.outcomes)
      .map(([k, n]) => `${n} ${h(k)}`)
      .join(', ');
    parts.push(`<p>Trained on ${e.events} events${outcomes ? `: ${outcomes}` : ''}.</p>`);
  }
  if (e.guard.reason !== undefined) {
    const rows = GUARD.filter(([, k]) => e.guard[k] !== undefined)
      .map(([label, k, pk]) => `<tr><td>${label}</td><td>${fmt(e.guard[k])}</td><td>${fmt(e.guard[pk])}</td></tr>`)
      .join('');
    parts.push(`<p>Guard: ${h(String(e.guard.reason))}</p>`);
    if (rows) parts.push(`<table><tr><th></th><th>this version</th><th>parent</th></tr>${rows}</table>`);
  }
  if (e.parent !== null || e.after !== null) {
    parts.push(
      '<table><tr><th></th><th>version</th><th>shown</th><th>taken</th><th>chars per suggestion</th><th>saved per 100 written</th></tr>' +
        (e.parent !== null ? `<tr><td>before</td><td>${h(e.parent)}</td>${usageCells(e.before)}</tr>` : '') +
        `<tr><td>after</td><td>${h(e.version)}</td>${usageCells(e.after)}</tr></table>`,
    );
  }
  for (const r of e.refused) {
    parts.push(`<p class="refused">Refused an update from it${r.date ? ` on ${h(r.date)}` : ''} (${r.events} events): ${h(r.reason)}</p>`);
  }
  if (e.examples.length > 0) {
    const rows = e.examples
      .map(
        (x) =>
          `<tr><td><pre>${h(x.context)}</pre><span class="meta">${h(x.file ?? '')}</span></td>` +
          `<td><pre>${h(x.then)}</pre><span class="meta">${h(x.then_version)}: ${h(x.outcome)}${x.user_wrote ? `; you wrote <code>${h(x.user_wrote)}</code>` : ''}</span></td>` +
          `<td><pre>${h(x.now)}</pre></td></tr>`,
      )
      .join('');
    parts.push(`<table class="examples"><tr><th>context</th><th>then</th><th>now (${h(e.version)})</th></tr>${rows}</table>`);
  }
  return `<section>${parts.join('\n')}</section>`;
}

/** The whole page, newest version first; a nonce-less page with no scripts (CSP: none). */
export function learnedHtml(entries: LearnedEntry[], where: string): string {
  const trained = entries.some((e) => e.events !== null);
  const body = trained
    ? [...entries].reverse().map(entryHtml).join('\n')
    : '<p>Nothing learned yet. Turn learning on from the rltab menu; a new version is trained once enough of your accepts and rejections have settled.</p>';
  return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<style>
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); }
table { border-collapse: collapse; margin: 0.4em 0; } td, th { border: 1px solid var(--vscode-panel-border); padding: 2px 8px; vertical-align: top; }
pre { margin: 0; white-space: pre-wrap; font-family: var(--vscode-editor-font-family); }
.meta { opacity: 0.7; font-size: 90%; } .live { color: var(--vscode-charts-green); } .refused { color: var(--vscode-charts-orange); }
</style></head><body><h1>What did rltab learn?</h1><p class="meta">${escapeHtml(where)}</p>
${body}
</body></html>`;
}

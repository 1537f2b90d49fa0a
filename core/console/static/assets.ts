/**
 * The console's only script and stylesheet, served as files from /console/static (so the
 * CSP needs no inline script or style). Kept as strings in a module so the bundled CLI
 * carries them without a build step or files beside it.
 */

export const CONSOLE_JS = String.raw`// airlock console: the only script, served from /console/static (CSP: script-src 'self').
// It adds a live tail to a session page; every other page works without it.
'use strict';
document.addEventListener('DOMContentLoaded', function () {
  var tail = document.getElementById('tail');
  if (!tail || !window.EventSource) return;
  var state = document.getElementById('tail-state');
  var source = new EventSource(tail.getAttribute('data-stream'));
  function text(tag, cls, value) {
    var el = document.createElement(tag);
    if (cls) el.className = cls;
    el.textContent = value;
    return el;
  }
  source.addEventListener('record', function (ev) {
    var r = JSON.parse(ev.data);
    if (tail.querySelector('li[data-seq="' + r.seq + '"]')) return;
    var li = document.createElement('li');
    li.setAttribute('data-seq', String(r.seq));
    li.setAttribute('data-type', r.type);
    li.appendChild(text('span', 'ts', r.ts.replace('T', ' ').replace(/\.\d+Z$/, 'Z')));
    li.appendChild(document.createTextNode(' '));
    li.appendChild(text('strong', '', r.type));
    li.appendChild(document.createTextNode(' '));
    li.appendChild(text('span', 'outcome ' + r.outcome, r.outcome));
    li.appendChild(document.createTextNode(' '));
    var data = r.data === undefined ? '' : JSON.stringify(r.data);
    li.appendChild(text('code', '', data.length > 500 ? data.slice(0, 499) + '\u2026' : data));
    tail.appendChild(li);
  });
  source.addEventListener('closed', function () {
    if (state) state.textContent = '(closed)';
    source.close();
  });
  source.onerror = function () {
    if (state && source.readyState === EventSource.CLOSED) state.textContent = '(disconnected)';
  };
});
`;

export const CONSOLE_CSS = String.raw`/* airlock console: plain, readable on a laptop and a phone. */
:root { --fg: #1b1f24; --muted: #5c6670; --line: #d5dbe1; --bg: #fff; --accent: #0b5cad; --danger: #b42318; --ok: #127a3a; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
body { margin: 0; }
header { display: flex; flex-wrap: wrap; gap: .75rem 1.5rem; align-items: center; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: #f5f7f9; }
.brand { font-size: 1.1rem; letter-spacing: .02em; }
nav { display: flex; gap: 1rem; }
nav a { color: var(--accent); text-decoration: none; padding: .2rem 0; }
nav a[aria-current="page"] { border-bottom: 2px solid var(--accent); font-weight: 600; }
.who { margin-left: auto; display: flex; gap: .6rem; align-items: center; }
main { padding: 1rem; max-width: 1400px; }
h1 { font-size: 1.4rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .5rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #f5f7f9; font-weight: 600; white-space: nowrap; }
code { font: .85rem/1.3 ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
button, .button { font: inherit; padding: .3rem .7rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.approve { background: var(--ok); border-color: var(--ok); color: #fff; }
button.danger { border-color: var(--danger); color: var(--danger); }
input[type="text"], select, textarea { font: inherit; padding: .3rem .4rem; border: 1px solid var(--line); border-radius: 4px; }
.actions { display: flex; flex-wrap: wrap; gap: .4rem; }
form.deny { display: flex; gap: .3rem; }
form.deny input { width: 10rem; }
.filters { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: end; margin: .5rem 0 1rem; }
.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
.signin { display: flex; flex-direction: column; gap: .5rem; max-width: 36rem; }
.signin textarea { font: .85rem ui-monospace, monospace; }
.signin button { align-self: flex-start; }
ul.oidc { list-style: none; padding: 0; display: flex; gap: .5rem; }
.muted { color: var(--muted); }
.notice { padding: .5rem .75rem; background: #e7f5ec; border: 1px solid #b7e1c6; border-radius: 4px; }
.error { padding: .5rem .75rem; background: #fdecea; border: 1px solid #f5c2bd; border-radius: 4px; }
.status, .outcome { font-size: .8rem; padding: .05rem .4rem; border-radius: 3px; background: #eef1f4; white-space: nowrap; }
.status.active, .outcome.ok { background: #e7f5ec; color: var(--ok); }
.status.pending { background: #fff4e0; color: #8a5300; }
.status.denied, .status.revoked, .outcome.denied, .outcome.error { background: #fdecea; color: var(--danger); }
.chain { padding: .5rem .75rem; border-radius: 4px; }
.chain.ok { background: #e7f5ec; border: 1px solid #b7e1c6; }
.chain.broken { background: #fdecea; border: 1px solid #f5c2bd; font-weight: 600; }
.pager { margin: 1rem 0; }
.tail { font-size: .9rem; padding-left: 1.5rem; }
.tail li { padding: .2rem 0; border-bottom: 1px dotted var(--line); }
.ts { color: var(--muted); }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { color: var(--muted); }
@media (max-width: 700px) {
  thead { display: none; }
  table, tbody, tr, td { display: block; width: 100%; }
  tr { border: 1px solid var(--line); border-radius: 6px; margin-bottom: .7rem; padding: .3rem; }
  td { border: none; padding: .2rem .4rem; }
  td[data-label]:not([data-label=""])::before { content: attr(data-label) ": "; color: var(--muted); font-size: .8rem; }
  .who { margin-left: 0; }
}
`;

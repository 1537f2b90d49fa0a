// airlock console: the only script, served from /console/static (CSP: script-src 'self').
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

// The operator page's only script: it follows a run's log live over
// server-sent events. Everything else works without it.
'use strict';

(function () {
  const log = document.getElementById('log');
  if (!log || !log.dataset.stream || typeof EventSource === 'undefined') {
    return;
  }
  const live = document.getElementById('live');
  const show = (state, text) => {
    log.dataset.live = state;
    if (live) {
      live.textContent = text;
      live.className = 'live ' + state;
    }
  };
  const stamp = (at) => new Date(at).toISOString().replace('T', ' ').slice(0, 19);
  const cell = (cls, text, tag) => {
    const el = document.createElement(tag || 'span');
    el.className = cls;
    el.textContent = text;
    return el;
  };

  const es = new EventSource(log.dataset.stream);
  es.onopen = () => show('open', 'live');
  es.onmessage = (ev) => {
    const line = JSON.parse(ev.data);
    const empty = document.getElementById('nolog');
    if (empty) {
      empty.remove();
    }
    const row = document.createElement('div');
    row.className = 'line';
    row.append(cell('seq', String(line.seq)), cell('', stamp(line.at), 'time'), cell('text', line.line));
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(row);
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  };
  es.addEventListener('end', (ev) => {
    es.close();
    const empty = document.getElementById('nolog');
    if (empty) {
      empty.textContent = 'No log lines.';
    }
    show('ended', 'run ' + String(ev.data).replace('_', ' ') + ': log complete');
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      show('closed', 'disconnected: reload the page');
    } else {
      show('reconnecting', 'reconnecting…');
    }
  };
})();

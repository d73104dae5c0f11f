// The playground's chat page. It follows the server's event stream and
// draws the chat as a phone shows it. Everything the bot sent arrives as
// spans (plain text with a kind) and becomes text nodes: nothing from the
// chat is ever parsed as HTML.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const chat = $('chat');
  const input = $('text');
  const menu = $('menu');

  // message ID -> its row; draft ID -> {row, timer}
  const rows = new Map();
  const drafts = new Map();
  let commands = [];
  let stopped = false;

  // What Telegram keeps a draft on screen after its last update.
  const draftLifetime = 30000;

  // Span kinds and the element each becomes; any other kind is plain text.
  const tags = {
    b: 'b', i: 'i', u: 'u', s: 's', code: 'code', pre: 'pre', a: 'a', quote: 'blockquote',
    spoiler: 'span', cmd: 'span', mention: 'span', tag: 'span', emoji: 'span',
  };
  const styles = ['danger', 'success', 'primary'];

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // Blocks: a phone starts a new line after them without showing the
  // newline that follows in the text, or the one that ends a block.
  const blocks = ['pre', 'quote'];

  function spans(parent, list) {
    let afterBlock = false;
    for (const s of list || []) {
      const tag = tags[s.k];
      if (!tag) {
        let t = s.t || '';
        if (afterBlock && t.startsWith('\n')) t = t.slice(1);
        parent.append(document.createTextNode(t));
        spans(parent, s.c);
        afterBlock = false;
        continue;
      }
      afterBlock = blocks.includes(s.k);
      const e = el(tag, 'e-' + s.k);
      if (s.k === 'a' && s.u) {
        e.href = s.u;
        e.target = '_blank';
        e.rel = 'noopener noreferrer';
      }
      if (s.k === 'cmd') e.addEventListener('click', () => send(e.textContent));
      if (s.k === 'spoiler') e.addEventListener('click', () => e.classList.add('shown'));
      if (s.t) e.append(document.createTextNode(s.t));
      spans(e, s.c);
      if (afterBlock && e.lastChild && e.lastChild.nodeType === Node.TEXT_NODE && e.lastChild.data.endsWith('\n')) {
        e.lastChild.data = e.lastChild.data.slice(0, -1);
      }
      parent.append(e);
    }
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function nearBottom() {
    return chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  }

  function keepBottom(f) {
    const stick = nearBottom();
    f();
    if (stick) chat.scrollTop = chat.scrollHeight;
  }

  function service(text, cls) {
    const s = el('div', 'service' + (cls ? ' ' + cls : ''), text);
    chat.append(s);
    return s;
  }

  // A row holds a bubble and, under it, its inline keyboard.
  function newRow(side, id) {
    const row = el('div', 'row ' + side);
    const bubble = el('div', 'bubble');
    row.append(bubble);
    if (id) {
      row.dataset.id = id;
      rows.set(id, row);
    }
    chat.append(row);
    return row;
  }

  function meta(ev, edited) {
    const m = el('span', 'meta');
    if (edited) m.append(el('span', 'edited', edited > 1 ? 'edited ×' + edited : 'edited'));
    if (ev.silent) m.append(el('span', 'silent', '🔕'));
    m.append(el('span', 'time', clock(ev.at)));
    return m;
  }

  function fill(row, ev, edited) {
    const bubble = row.querySelector('.bubble');
    bubble.replaceChildren();
    row.classList.toggle('checkpoint', !!ev.checkpoint);
    if (ev.checkpoint) bubble.append(el('div', 'label', '🔏 audit checkpoint: the log\'s head, kept off the host'));
    const body = el('div', 'text');
    spans(body, ev.text);
    bubble.append(body, meta(ev, edited));
    keyboard(row, ev.id, ev.buttons);
  }

  function keyboard(row, id, lines) {
    const old = row.querySelector('.keyboard');
    if (old) old.remove();
    if (!lines || !lines.length || row.classList.contains('deleted')) return;
    const kb = el('div', 'keyboard');
    for (const line of lines) {
      const r = el('div', 'kb-row');
      for (const b of line) {
        const cls = 'kb-button' + (styles.includes(b.style) ? ' style-' + b.style : '');
        let x;
        if (b.url) {
          x = el('a', cls, b.text);
          x.href = b.url;
          x.target = '_blank';
          x.rel = 'noopener noreferrer';
        } else {
          x = el('button', cls, b.text);
          x.type = 'button';
          if (b.disabled) {
            x.disabled = true;
            x.classList.add('disabled');
            x.title = 'disabled: it cannot be pressed';
          } else {
            x.addEventListener('click', () => press(id, b.n, x));
          }
        }
        x.dataset.n = b.n;
        r.append(x);
      }
      kb.append(r);
    }
    row.append(kb);
  }

  function size(n) {
    if (n < 1024) return n + ' B';
    if (n < 1 << 20) return (n / 1024).toFixed(1) + ' KB';
    return (n / (1 << 20)).toFixed(1) + ' MB';
  }

  function documentRow(ev) {
    const row = newRow('in', ev.id);
    row.classList.add('has-doc');
    const bubble = row.querySelector('.bubble');
    const d = ev.doc;
    const card = el('div', 'doc');
    const icon = el('div', 'doc-icon', (d.name.split('.').pop() || 'file').slice(0, 4));
    const about = el('div', 'doc-about');
    about.append(el('div', 'doc-name', d.name), el('div', 'doc-size', size(d.size)));
    card.append(icon, about);
    bubble.append(card);
    if (d.preview) {
      const det = el('details', 'doc-preview');
      det.append(el('summary', '', d.truncated ? 'preview (the start)' : 'preview'));
      det.append(el('pre', '', d.preview));
      bubble.append(det);
    }
    if (d.kept) {
      const a = el('a', 'doc-download', 'download');
      a.href = 'doc/' + ev.id;
      a.download = d.name;
      bubble.append(a);
    } else {
      bubble.append(el('div', 'doc-size', 'too large for the playground to keep'));
    }
    if (ev.text) {
      const cap = el('div', 'text caption');
      spans(cap, ev.text);
      bubble.append(cap);
    }
    bubble.append(meta(ev, 0));
    keyboard(row, ev.id, ev.buttons);
  }

  // A message or document persists the output: the drafts before it end.
  function finishDrafts() {
    for (const [id, d] of drafts) {
      clearTimeout(d.timer);
      d.row.remove();
      drafts.delete(id);
    }
  }

  function draftRow(ev) {
    const id = ev.draft.id;
    let d = drafts.get(id);
    if (!d) {
      d = { row: newRow('in draft') };
      drafts.set(id, d);
    }
    clearTimeout(d.timer);
    const bubble = d.row.querySelector('.bubble');
    bubble.replaceChildren();
    bubble.append(el('div', 'label', 'draft · live'));
    const body = el('div', 'text');
    if (ev.text && ev.text.length) spans(body, ev.text);
    else body.append(el('span', 'thinking', 'Thinking…'));
    bubble.append(body);
    if (ev.draft.canStop) {
      const stop = el('button', 'draft-stop', '■ stop');
      stop.type = 'button';
      stop.addEventListener('click', () => post('stop', { draft: id }));
      bubble.append(stop);
    }
    bubble.append(meta(ev, 0));
    d.timer = setTimeout(() => {
      d.row.remove();
      drafts.delete(id);
    }, draftLifetime);
  }

  // Whatever changes, a chat scrolled to its end stays at its end.
  function apply(ev) {
    keepBottom(() => change(ev));
  }

  function change(ev) {
    switch (ev.kind) {
      case 'owner':
        fill(newRow('out', ev.id), ev, 0);
        break;
      case 'message':
        finishDrafts();
        fill(newRow('in', ev.id), ev, 0);
        break;
      case 'edit': {
        const row = rows.get(ev.id) || newRow('in', ev.id);
        fill(row, ev, ev.edits);
        break;
      }
      case 'buttons': {
        const row = rows.get(ev.id);
        if (row) keyboard(row, ev.id, ev.buttons);
        break;
      }
      case 'delete': {
        const row = rows.get(ev.id);
        if (!row) break;
        row.classList.add('deleted');
        keyboard(row, ev.id, null);
        const dl = row.querySelector('.doc-download');
        if (dl) dl.remove();
        row.querySelector('.bubble').prepend(el('div', 'label deleted-label', '🗑 deleted'));
        break;
      }
      case 'document':
        finishDrafts();
        documentRow(ev);
        break;
      case 'draft':
        draftRow(ev);
        break;
      case 'stop': {
        const d = drafts.get(ev.draft.id);
        if (d) {
          d.row.classList.add('stopped');
          const label = d.row.querySelector('.label');
          if (label) label.textContent = 'draft · stopped';
          const b = d.row.querySelector('.draft-stop');
          if (b) b.remove();
        }
        break;
      }
      case 'menu':
        commands = ev.menu || [];
        $('menu-button').classList.toggle('empty', commands.length === 0);
        break;
      case 'answer':
        toast(ev.answer.text, ev.answer.alert);
        break;
      case 'stopped':
        stopped = true;
        es.close();
        finishDrafts();
        service('The playground stopped: its relay, state and chat are gone.', 'end');
        $('status').textContent = 'stopped';
        input.disabled = true;
        break;
    }
  }

  let toastTimer;
  function toast(text, alert) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('alert', !!alert);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, alert ? 6000 : 3000);
  }

  async function post(what, body) {
    try {
      const r = await fetch(what, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      if (!r.ok) {
        const e = await r.json().catch(() => ({ error: r.statusText }));
        toast(e.error || r.statusText, true);
        return false;
      }
      return true;
    } catch (e) {
      toast('the playground is not answering', true);
      return false;
    }
  }

  async function send(text) {
    if (stopped || !text.trim()) return;
    if (await post('send', { text })) {
      chat.scrollTop = chat.scrollHeight;
    }
  }

  function press(id, n, button) {
    button.classList.add('pressed');
    post('press', { id, n }).then(() => button.classList.remove('pressed'));
  }

  function sendInput() {
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    grow();
    send(text);
  }

  function grow() {
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 120) + 'px';
  }

  input.addEventListener('input', grow);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      sendInput();
    }
  });
  $('send').addEventListener('click', sendInput);

  // The "/" button: the command menu the bot set for this chat.
  $('menu-button').addEventListener('click', () => {
    if (!menu.hidden) {
      menu.hidden = true;
      return;
    }
    menu.replaceChildren();
    if (!commands.length) menu.append(el('div', 'menu-empty', 'the bot has set no commands'));
    for (const c of commands) {
      const item = el('button', 'menu-item');
      item.type = 'button';
      item.append(el('span', 'menu-command', '/' + c.command), el('span', 'menu-description', c.description));
      item.addEventListener('click', () => {
        menu.hidden = true;
        send('/' + c.command);
      });
      menu.append(item);
    }
    menu.hidden = false;
  });

  // The throwaway enrolment's code, as an authenticator app shows it.
  let code = '';
  let left = 0;
  async function refreshCode() {
    try {
      const r = await fetch('totp');
      const t = await r.json();
      code = t.code;
      left = t.remaining;
      $('totp-code').textContent = code.slice(0, 3) + ' ' + code.slice(3);
      $('totp-code').dataset.code = code;
      tick();
    } catch (e) {
      $('totp-code').textContent = '––– –––';
    }
  }
  function tick() {
    $('totp-left').textContent = left + ' s';
    $('totp-fill').style.width = (left / 30 * 100) + '%';
  }
  setInterval(() => {
    if (stopped) return;
    left--;
    if (left <= 0) refreshCode();
    else tick();
  }, 1000);
  $('totp-use').addEventListener('click', () => {
    input.value = '/login ' + code;
    input.focus();
    grow();
  });
  refreshCode();

  fetch('info').then((r) => r.json()).then((info) => {
    $('bot-name').textContent = info.bot;
    const intro = el('div', 'service intro');
    intro.append(
      el('div', '', 'relay playground: a chat with your relay, on this machine only. Nothing reaches Telegram.'),
      el('div', '', 'policy: ' + info.policy + ' (' + info.commands + ' commands). Commands really run here, in their sandboxes.'),
      el('div', '', 'Start with /login and the code above, then press / for the commands.'));
    chat.prepend(intro);
  });

  const es = new EventSource('events');
  es.onopen = () => { $('status').textContent = 'bot'; };
  es.onerror = () => { if (!stopped) $('status').textContent = 'reconnecting…'; };
  es.onmessage = (m) => apply(JSON.parse(m.data));
})();

// The demo page: a chat room with presence (chat:lobby) and a live
// leaderboard (leaderboard:global), on clarion.js. Open it in two tabs.
//
// Connections are anonymous (the default config allows it), so a tab's
// name travels in its messages: a `hello` publication when it joins, and
// the name in every chat line and score. `?name=NAME` picks the name.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const CHAT = 'chat:lobby';
  const BOARD = 'leaderboard:global';
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const client = new Clarion(`${scheme}://${location.host}/connection/websocket`);

  // ---- who we are --------------------------------------------------------
  const fromQuery = new URLSearchParams(location.search).get('name');
  const stored = sessionStorage.getItem('clarion-demo-name');
  let myName = fromQuery || stored || `guest-${Math.floor(1000 + Math.random() * 9000)}`;
  $('name').value = myName;
  $('name').addEventListener('change', () => {
    const next = $('name').value.trim().slice(0, 24);
    if (!next || next === myName) return;
    const before = myName;
    myName = next;
    sessionStorage.setItem('clarion-demo-name', myName);
    client.publish(CHAT, { type: 'hello', name: myName, was: before }).catch(() => {});
  });

  client.on('state', ({ state, detail }) => {
    const status = $('status');
    status.className = `status ${state}`;
    if (state === 'connected') {
      status.textContent = `connected (client ${detail.client})`;
    } else if (state === 'disconnected') {
      const again = detail.reconnect ? ', reconnecting…' : '';
      status.textContent = `disconnected (${detail.code}${detail.reason ? ' ' + detail.reason : ''})${again}`;
    } else {
      status.textContent = `${state}…`;
    }
  });

  // ---- chat with presence -----------------------------------------------
  const names = new Map(); // client id -> name, learned from publications
  const online = new Map(); // client id -> presence info
  const shown = new Set(); // offsets already on screen
  let announced = null; // the client id we said hello as

  function nameOf(clientId) {
    return names.get(clientId) || `guest ${String(clientId).slice(-4)}`;
  }

  function line(text, className, who) {
    const li = document.createElement('li');
    if (className) li.className = className;
    if (who) {
      const b = document.createElement('b');
      b.textContent = `${who}:`;
      li.append(b);
    }
    li.append(document.createTextNode(text));
    return li;
  }

  // Renders a chat publication; `atTop` for history loaded after live ones.
  function showMessage(pub, atTop) {
    if (pub.offset !== undefined) {
      if (shown.has(pub.offset)) return;
      shown.add(pub.offset);
    }
    const data = pub.data || {};
    const from = pub.info && pub.info.client;
    if (from && data.name) names.set(from, String(data.name));
    let li;
    if (data.type === 'hello') {
      const text = data.was ? `${data.was} is now ${data.name}` : `${data.name} joined`;
      li = line(text, 'system');
    } else {
      li = line(String(data.text || ''), null, String(data.name || nameOf(from)));
    }
    const list = $('messages');
    if (atTop) list.prepend(li);
    else list.append(li);
    list.scrollTop = list.scrollHeight;
    renderOnline();
  }

  function renderOnline() {
    const ul = $('online');
    ul.replaceChildren(
      ...[...online.keys()].map((id) => {
        const li = document.createElement('li');
        li.textContent = id === client.clientId ? `${myName} (you)` : nameOf(id);
        return li;
      }),
    );
    $('online-count').textContent = String(online.size);
  }

  async function reloadChat() {
    $('messages').replaceChildren();
    shown.clear();
    const page = await client.history(CHAT, { limit: 50, reverse: true });
    for (const pub of page.publications || []) showMessage(pub, true);
  }

  async function refreshPresence() {
    const presence = await client.presence(CHAT);
    online.clear();
    for (const info of presence.clients || []) online.set(info.client, info);
    renderOnline();
  }

  client.subscribe(CHAT, {
    subscribed: async (result) => {
      try {
        // Not recovered (first subscribe, or history lost): reload.
        if (!result.recovered) await reloadChat();
        await refreshPresence();
        if (announced !== client.clientId) {
          announced = client.clientId;
          await client.publish(CHAT, { type: 'hello', name: myName });
        }
      } catch (err) {
        console.warn('chat setup', err);
      }
    },
    publication: (pub) => showMessage(pub, false),
    join: (info) => {
      online.set(info.client, info);
      renderOnline();
    },
    leave: (info) => {
      if (!online.delete(info.client)) return;
      $('messages').append(line(`${nameOf(info.client)} left`, 'system'));
      renderOnline();
    },
  });

  $('chat-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('chat-input').value.trim();
    if (!text) return;
    client
      .publish(CHAT, { type: 'text', name: myName, text })
      .then(() => ($('chat-input').value = ''))
      .catch((err) => $('messages').append(line(`not sent: ${err.message}`, 'system')));
  });

  // ---- live leaderboard --------------------------------------------------
  // Each publication carries a player's new total; the latest one wins, so
  // replaying history (or a recovery) in order rebuilds the same table.
  const scores = new Map();

  function renderBoard(changed) {
    const rows = [...scores.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    $('leaderboard').replaceChildren(
      ...rows.map(([player, score], i) => {
        const tr = document.createElement('tr');
        if (player === myName) tr.classList.add('me');
        if (player === changed) tr.classList.add('flash');
        for (const cell of [i + 1, player, score]) {
          const td = document.createElement('td');
          td.textContent = String(cell);
          tr.append(td);
        }
        return tr;
      }),
    );
  }

  function applyScore(data) {
    if (!data || typeof data.player !== 'string' || typeof data.score !== 'number') return;
    scores.set(data.player, data.score);
  }

  client.subscribe(BOARD, {
    subscribed: async (result) => {
      if (result.recovered) return renderBoard();
      try {
        const page = await client.history(BOARD, { limit: 1000 });
        scores.clear();
        for (const pub of page.publications || []) applyScore(pub.data);
        renderBoard();
      } catch (err) {
        console.warn('leaderboard setup', err);
      }
    },
    publication: (pub) => {
      applyScore(pub.data);
      renderBoard(pub.data && pub.data.player);
    },
  });

  $('score').addEventListener('click', () => {
    const score = (scores.get(myName) || 0) + 1 + Math.floor(Math.random() * 10);
    client.publish(BOARD, { player: myName, score }).catch((err) => console.warn(err));
  });

  client.connect();
})();

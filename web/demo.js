// The demo page: a chat room with presence (chat:lobby) and a live
// leaderboard (leaderboard:global), on the Clarion SDK (clarion-client,
// served at /clarion-client.js). Open it in two tabs.
//
// Connections are anonymous (the default config allows it), so a tab's
// name travels in its messages: a `hello` publication when it joins, and
// the name in every chat line and score. `?name=NAME` picks the name.

import { Client } from '/clarion-client.js';

const $ = (id) => document.getElementById(id);
const CHAT = 'chat:lobby';
const BOARD = 'leaderboard:global';
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const client = new Client(`${scheme}://${location.host}/connection/websocket`, { name: 'clarion-demo' });
window.clarionDemo = { client }; // for the browser tests and the curious

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
  chat.publish({ type: 'hello', name: myName, was: before }).catch(() => {});
});

// ---- connection status -------------------------------------------------
function status(state, text) {
  $('status').className = `status ${state}`;
  $('status').textContent = text;
}

client.on('connecting', ({ code, reason }) => {
  const why = code >= 3000 && code < 3100 ? '' : ` (${code}${reason ? ' ' + reason : ''})`;
  status('connecting', `connecting…${why}`);
});
client.on('connected', ({ client: id }) => status('connected', `connected (client ${id})`));
client.on('disconnected', ({ code, reason }) => status('disconnected', `disconnected (${code} ${reason})`));
client.on('error', ({ type, error }) => console.warn('clarion', type, error.code, error.message));

// ---- chat with presence -----------------------------------------------
const chat = client.newSubscription(CHAT);
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
  $('online').replaceChildren(
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
  const page = await chat.history({ limit: 50, reverse: true });
  for (const pub of page.publications) showMessage(pub, true);
}

async function refreshPresence() {
  const presence = await chat.presence();
  online.clear();
  for (const info of presence.clients) online.set(info.client, info);
  renderOnline();
}

// Once per (re)subscription. Recovered: the missed messages follow this
// event; not recovered (first time, or the server lost the history):
// reload the last page.
chat.on('subscribed', async ({ recovered }) => {
  try {
    if (!recovered) await reloadChat();
    await refreshPresence();
    if (announced !== client.clientId) {
      announced = client.clientId;
      await chat.publish({ type: 'hello', name: myName });
    }
  } catch (err) {
    console.warn('chat setup', err);
  }
});
chat.on('publication', (pub) => showMessage(pub, false));
chat.on('join', ({ info }) => {
  online.set(info.client, info);
  renderOnline();
});
chat.on('leave', ({ info }) => {
  if (!online.delete(info.client)) return;
  $('messages').append(line(`${nameOf(info.client)} left`, 'system'));
  renderOnline();
});

// Sent even while reconnecting: the SDK queues it and sends it once, with
// its idempotency key, when the connection is back.
$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-input').value.trim();
  if (!text) return;
  $('chat-input').value = '';
  chat
    .publish({ type: 'text', name: myName, text })
    .catch((err) => $('messages').append(line(`not sent (${err.code} ${err.message}): ${text}`, 'system')));
});

// ---- live leaderboard --------------------------------------------------
// Each publication carries a player's new total; the latest one wins, so
// replaying history (or a recovery) in order rebuilds the same table.
const board = client.newSubscription(BOARD);
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

board.on('subscribed', async ({ recovered }) => {
  if (recovered) return renderBoard();
  try {
    const page = await board.history({ limit: 1000 });
    scores.clear();
    for (const pub of page.publications) applyScore(pub.data);
    renderBoard();
  } catch (err) {
    console.warn('leaderboard setup', err);
  }
});
board.on('publication', (pub) => {
  applyScore(pub.data);
  renderBoard(pub.data && pub.data.player);
});

$('score').addEventListener('click', () => {
  const score = (scores.get(myName) || 0) + 1 + Math.floor(Math.random() * 10);
  board.publish({ player: myName, score }).catch((err) => console.warn(err));
});

chat.subscribe();
board.subscribe();
client.connect();

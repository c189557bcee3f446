// clarion.js: a tiny browser client for the Clarion protocol, version 1
// (docs/protocol.md). No dependencies; one global, `Clarion`.
//
//   const client = new Clarion('ws://127.0.0.1:8080/connection/websocket', { token });
//   const sub = client.subscribe('chat:lobby', {
//     publication: (pub) => ..., join: (info) => ..., leave: (info) => ...,
//     subscribed: (result) => ...,   // every (re)subscribe: result.recovered says
//                                    // whether missed publications were delivered
//   });
//   client.connect();
//   await client.publish('chat:lobby', { text: 'hi' });
//
// Reconnects with exponential backoff and jitter when the server or the
// network says it may (close codes 1001/1006/1011/1012/1013 and
// 4000-4499), and resubscribes every channel with its last position
// (offset, epoch) so the server replays what was missed, or says
// `recovered: false` and the page reloads its state.
'use strict';

(function (global) {
  const PROTOCOL = 'clarion.json.v1';

  // Whether a close code means "come back" (docs/protocol.md, disconnect codes).
  function mayReconnect(code) {
    if (code >= 4000 && code <= 4499) return true;
    if (code >= 4500 && code <= 4999) return false;
    return [1001, 1006, 1011, 1012, 1013].includes(code);
  }

  class Subscription {
    constructor(client, channel, handlers) {
      this.client = client;
      this.channel = channel;
      this.handlers = handlers || {};
      this.offset = null; // last offset seen (channels with history)
      this.epoch = null;
      this.active = false;
    }

    emit(name, value) {
      const handler = this.handlers[name];
      if (handler) {
        try {
          handler(value);
        } catch (err) {
          console.error('clarion: handler', name, err);
        }
      }
    }

    // The subscribe params, with the position to recover from if we have one.
    params() {
      const params = { channel: this.channel };
      if (this.offset !== null && this.epoch !== null) {
        Object.assign(params, { recover: true, offset: this.offset, epoch: this.epoch });
      }
      return params;
    }

    // The reply is handled synchronously (not in a promise callback), so
    // that recovered publications come before any live one that follows
    // the reply in the same frame.
    start() {
      const onResult = (result) => this.onSubscribed(result);
      this.client
        .call('subscribe', this.params(), false, onResult)
        .catch((err) => this.emit('error', err));
    }

    onSubscribed(result) {
      this.active = true;
      for (const pub of result.publications || []) this.onPublication(pub);
      if (result.offset !== undefined) {
        this.offset = result.offset;
        this.epoch = result.epoch;
      }
      this.emit('subscribed', result);
    }

    onPublication(pub) {
      if (pub.offset !== undefined) this.offset = pub.offset;
      if (pub.epoch !== undefined) this.epoch = pub.epoch;
      this.emit('publication', pub);
    }

    unsubscribe() {
      this.client.subs.delete(this.channel);
      this.active = false;
      if (this.client.state === 'connected') {
        this.client.call('unsubscribe', { channel: this.channel }).catch(() => {});
      }
    }
  }

  class Clarion {
    constructor(url, options) {
      this.url = url;
      this.options = Object.assign({ minDelay: 500, maxDelay: 20000 }, options || {});
      this.state = 'disconnected';
      this.clientId = null;
      this.subs = new Map();
      this.pending = new Map();
      this.nextId = 1;
      this.attempt = 0;
      this.listeners = {};
      this.ws = null;
      this.timer = null;
      this.stopped = true;
    }

    on(event, fn) {
      (this.listeners[event] = this.listeners[event] || []).push(fn);
      return this;
    }

    emit(event, value) {
      for (const fn of this.listeners[event] || []) fn(value);
    }

    setState(state, detail) {
      this.state = state;
      this.emit('state', { state, detail });
    }

    connect() {
      this.stopped = false;
      this.open();
    }

    disconnect() {
      this.stopped = true;
      clearTimeout(this.timer);
      if (this.ws) this.ws.close(1000, 'bye');
    }

    open() {
      this.setState('connecting');
      const ws = new WebSocket(this.url, PROTOCOL);
      this.ws = ws;
      ws.onopen = () => this.sendConnect();
      ws.onmessage = (event) => this.onFrame(event.data);
      ws.onclose = (event) => this.onClose(ws, event);
    }

    async sendConnect() {
      const params = { name: 'clarion.js', version: '0.1.0' };
      let token = this.options.token;
      if (this.options.getToken) token = await this.options.getToken();
      if (token) params.token = token;
      try {
        const result = await this.call('connect', params, true);
        this.clientId = result.client;
        this.attempt = 0;
        this.setState('connected', result);
        for (const sub of this.subs.values()) sub.start();
      } catch (err) {
        // The server ends the connection after a refused connect.
      }
    }

    // Sends a command and resolves with its result (rejects with its error);
    // `onResult`, if given, sees the result first, synchronously.
    call(method, params, beforeConnect, onResult) {
      if (!beforeConnect && this.state !== 'connected') {
        return Promise.reject(new Error('not connected'));
      }
      const id = this.nextId++;
      const frame = JSON.stringify({ id, method, params: params || {} });
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject, onResult });
        this.ws.send(frame);
      });
    }

    onFrame(data) {
      for (const line of String(data).split('\n')) {
        if (!line.trim()) continue;
        let message;
        try {
          message = JSON.parse(line);
        } catch (err) {
          continue;
        }
        if (message.id !== undefined) this.onReply(message);
        else if (message.push) this.onPush(message);
      }
    }

    onReply(reply) {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.error) {
        const err = new Error(reply.error.message);
        Object.assign(err, reply.error);
        waiter.reject(err);
      } else {
        if (waiter.onResult) waiter.onResult(reply.result || {});
        waiter.resolve(reply.result || {});
      }
    }

    onPush(push) {
      const sub = this.subs.get(push.channel);
      switch (push.push) {
        case 'publication':
          if (sub) sub.onPublication(push);
          break;
        case 'join':
        case 'leave':
          if (sub) sub.emit(push.push, push.info);
          break;
        case 'unsubscribe':
          if (!sub) break;
          sub.active = false;
          sub.emit('unsubscribed', push);
          if (push.resubscribe) sub.start();
          else this.subs.delete(push.channel);
          break;
        case 'disconnect':
          this.lastDisconnect = push;
          break;
        default:
          break; // a push type this client does not know
      }
    }

    onClose(ws, event) {
      if (ws !== this.ws) return;
      for (const waiter of this.pending.values()) waiter.reject(new Error('connection closed'));
      this.pending.clear();
      for (const sub of this.subs.values()) sub.active = false;
      const reconnect = !this.stopped && mayReconnect(event.code);
      this.setState('disconnected', { code: event.code, reason: event.reason, reconnect });
      if (reconnect) this.scheduleReconnect();
    }

    // Exponential backoff with jitter: a random delay between half and all
    // of min * 2^attempt, capped, so a restarted server is not hit by every
    // client at once.
    scheduleReconnect() {
      const { minDelay, maxDelay } = this.options;
      const ceiling = Math.min(maxDelay, minDelay * Math.pow(2, this.attempt));
      const delay = ceiling / 2 + Math.random() * (ceiling / 2);
      this.attempt += 1;
      this.timer = setTimeout(() => this.open(), delay);
      this.emit('reconnecting', { delay, attempt: this.attempt });
    }

    subscribe(channel, handlers) {
      let sub = this.subs.get(channel);
      if (sub) return sub;
      sub = new Subscription(this, channel, handlers);
      this.subs.set(channel, sub);
      if (this.state === 'connected') sub.start();
      return sub;
    }

    publish(channel, data) {
      return this.call('publish', { channel, data });
    }

    presence(channel) {
      return this.call('presence', { channel });
    }

    presenceStats(channel) {
      return this.call('presence_stats', { channel });
    }

    // options: { limit, since: {offset, epoch}, reverse }
    history(channel, options) {
      return this.call('history', Object.assign({ channel }, options || {}));
    }
  }

  Clarion.mayReconnect = mayReconnect;
  global.Clarion = Clarion;
})(typeof window !== 'undefined' ? window : globalThis);

// The WebSocket transport: subprotocol `clarion.json.v1`, one text message
// per frame. Works with the browser's WebSocket and with Node's `ws`.

import type { Transport, TransportEvents, TransportFactory } from './transport.js';

/** The subprotocol of docs/protocol.md. */
export const SUBPROTOCOL = 'clarion.json.v1';

/** What the SDK needs of a WebSocket object (the browser's, or `ws`'s). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor: the global `WebSocket`, or `WebSocket` from the `ws` package. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

const OPEN = 1;

/** A transport factory over `WebSocketImpl` (default: the global `WebSocket`). */
export function webSocketTransport(WebSocketImpl?: WebSocketConstructor): TransportFactory {
  return (url, events) => {
    const Impl = WebSocketImpl ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Impl) {
      throw new TypeError('no WebSocket here: pass the `websocket` option (Node 20: `ws`)');
    }
    return new WebSocketTransport(new Impl(url, SUBPROTOCOL), events);
  };
}

class WebSocketTransport implements Transport {
  readonly name = 'websocket';

  constructor(
    private readonly ws: WebSocketLike,
    events: TransportEvents,
  ) {
    ws.onopen = () => events.open();
    ws.onmessage = (event) => events.frame(String(event.data));
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (event) => {
      this.detach();
      events.close(event.code || 1006, event.reason || '');
    };
  }

  send(frame: string): void {
    if (this.ws.readyState === OPEN) this.ws.send(frame);
  }

  close(code: number, reason: string): void {
    this.detach();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.close();
    }
  }

  private detach(): void {
    this.ws.onopen = null;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.onerror = () => {};
  }
}

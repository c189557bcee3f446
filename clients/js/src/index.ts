// clarion-client: the client SDK of Clarion (docs/protocol.md).

export { Client } from './client.js';
export { Subscription } from './subscription.js';
export { ClarionError, UnauthorizedError } from './errors.js';
export {
  DISCONNECT_CODES,
  ERROR_CODES,
  RECONNECT_CLOSE_CODES,
  SDK_CODES,
  UNSUBSCRIBE_CODES,
  codeInfo,
  mayReconnect,
  type CodeInfo,
} from './codes.js';
export { SUBPROTOCOL, webSocketTransport, type WebSocketConstructor, type WebSocketLike } from './websocket.js';
export type { Transport, TransportEvents, TransportFactory } from './transport.js';
export type { Clock } from './clock.js';
export type { PositionStorage } from './storage.js';
export { VERSION } from './version.js';
export type * from './types.js';

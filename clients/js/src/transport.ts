// The seam between the state machines and the network. A transport carries
// frames of newline-separated JSON both ways (docs/protocol.md, "Transport
// and framing") and says when it opened and when it closed, with a code and
// a reason. WebSocket is one; SSE, HTTP streaming and long polling fit the
// same contract.

/** What a transport reports to the client. After `close`, nothing more. */
export interface TransportEvents {
  /** The transport can carry frames now (called at most once). */
  open(): void;
  /** A frame from the server: one or more JSON messages separated by `\n`. */
  frame(data: string): void;
  /**
   * The transport ended, with a code (WebSocket close code, disconnect
   * code, or 1006 when it failed without one) and a reason. Called exactly
   * once, also when `open` never came, but not after `Transport.close`.
   */
  close(code: number, reason: string): void;
}

/** One connection attempt. */
export interface Transport {
  /** `websocket`, `sse`, ... (shown in the `connected` event). */
  readonly name: string;
  /** Sends one frame (one or more commands separated by `\n`); only after `open`. */
  send(frame: string): void;
  /** Ends the transport; the client expects no more events from it. */
  close(code: number, reason: string): void;
}

/** Opens a transport to `url`; events go to `events`. */
export type TransportFactory = (url: string, events: TransportEvents) => Transport;

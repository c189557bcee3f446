// The wire messages of docs/protocol.md, as the SDK reads and writes them,
// and the framing: newline-separated JSON, split into frames the server
// accepts.

/** The publisher of a publication, or a member of a channel. */
export interface ClientInfo {
  client: string;
  user: string;
  /** The connection token's `info`. */
  info?: unknown;
  /** The subscription token's `info`. */
  chan_info?: unknown;
}

export interface WirePublication {
  offset?: number;
  epoch?: string;
  data: unknown;
  info?: ClientInfo;
}

export interface WireError {
  code: number;
  message: string;
  temporary: boolean;
}

export interface Reply {
  id: number;
  result?: Record<string, unknown>;
  error?: WireError;
}

export interface Push {
  push: string;
  channel?: string;
  [field: string]: unknown;
}

export interface Command {
  id: number;
  method: string;
  params?: Record<string, unknown>;
}

/** Limits of one client frame (the server's defaults, docs/protocol.md). */
export const MAX_COMMANDS_PER_FRAME = 64;
export const MAX_FRAME_BYTES = 64 * 1024;

/** Parses a server frame into messages; throws on anything that is not a JSON object per line. */
export function parseFrame(frame: string): Array<Reply | Push> {
  const messages: Array<Reply | Push> = [];
  for (const line of frame.split('\n')) {
    if (line.trim() === '') continue;
    const value: unknown = JSON.parse(line);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new SyntaxError('a message is not a JSON object');
    }
    messages.push(value as Reply | Push);
  }
  return messages;
}

/** Joins encoded commands into frames within the per-frame limits. */
export function packFrames(commands: readonly string[]): string[] {
  const frames: string[] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const command of commands) {
    const size = utf8Length(command) + 1;
    if (current.length > 0 && (current.length === MAX_COMMANDS_PER_FRAME || bytes + size > MAX_FRAME_BYTES)) {
      frames.push(current.join('\n'));
      current = [];
      bytes = 0;
    }
    current.push(command);
    bytes += size;
  }
  if (current.length > 0) frames.push(current.join('\n'));
  return frames;
}

export function isReply(message: Reply | Push): message is Reply {
  return typeof (message as Reply).id === 'number';
}

/** The UTF-8 length of `text` (lone surrogates counted as 3 bytes, as encoders replace them). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit < 0xdc00 && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

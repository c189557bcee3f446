// What peer_server.js and peer_client.js share (spec: ../README.md).
'use strict';

// The peers' --deflate MODE (spec: "Compression").
const DEFLATE_MODES = ['off', 'on', 'no-context', 'window10'];

// ws's `perMessageDeflate` option for MODE, the same for server and client.
// ws compresses only messages of 1024 bytes or more by default
// (`threshold`); the peers compress every message, as websockets does.
function perMessageDeflate(mode) {
  switch (mode) {
    case 'off':
      return false;
    case 'on':
      return { threshold: 0 };
    case 'no-context':
      return { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 };
    case 'window10':
      return { serverMaxWindowBits: 10, clientMaxWindowBits: 10, threshold: 0 };
    default:
      throw new Error(`bad --deflate ${mode}`);
  }
}

module.exports = { DEFLATE_MODES, perMessageDeflate };

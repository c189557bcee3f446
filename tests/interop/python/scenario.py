"""What peer_server.py and peer_client.py share (spec: ../README.md).

Import it before `websockets`: it sets the library's fragment limit.
"""

import os

# websockets 17 refuses (1009 "too many fragments") a message of more than
# 4096 frames, read from this variable when websockets.asyncio is imported.
# The peers accept what a conformant peer may send: up to a 64 MiB message in
# 64-byte frames (Autobahn 9.3.1 sends 4 MiB in 65,536 frames).
os.environ.setdefault("WEBSOCKETS_MAX_FRAGMENTS", str(1 << 20))

# Largest message accepted (the spec asks for at least 32 MiB).
MAX_MESSAGE = 64 * 1024 * 1024


async def send_fragments(ws, fragments):
    """Send one message as exactly len(fragments) frames, no more.

    `fragments` are all str (a text message) or all bytes (binary).
    websockets' own ``send(iterable)`` sends each item with FIN=0 and then
    ends the message with an extra empty continuation frame (FIN=1): N+1
    frames where the spec wants N. So this drives the sans-IO protocol
    object the way ``send()`` does, one ``send_context()`` per frame
    (websockets internals, stable across 13-17; requirements.txt pins it).
    """
    text = isinstance(fragments[0], str)
    last = len(fragments) - 1
    for i, fragment in enumerate(fragments):
        data = fragment.encode() if text else bytes(fragment)
        async with ws.send_context():
            if i > 0:
                ws.protocol.send_continuation(data, fin=i == last)
            elif text:
                ws.protocol.send_text(data, fin=i == last)
            else:
                ws.protocol.send_binary(data, fin=i == last)

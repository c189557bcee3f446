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


# The peers' --deflate MODE (spec: "Compression").
DEFLATE_MODES = ("off", "on", "no-context", "window10")


def deflate_options(mode, server):
    """Keyword arguments for websockets' serve() (server) or connect() for MODE.

    `on` is the library's own permessage-deflate (`compression="deflate"`);
    the other modes pass a factory with the mode's parameters. websockets
    compresses messages of every size.
    """
    # Imported here: websockets must be imported after the environment is set.
    from websockets.extensions.permessage_deflate import (
        ClientPerMessageDeflateFactory,
        ServerPerMessageDeflateFactory,
    )

    factory = ServerPerMessageDeflateFactory if server else ClientPerMessageDeflateFactory
    if mode == "off":
        return {"compression": None}
    if mode == "on":
        return {"compression": "deflate"}
    if mode == "no-context":
        params = {"server_no_context_takeover": True, "client_no_context_takeover": True}
    elif mode == "window10":
        params = {"server_max_window_bits": 10, "client_max_window_bits": 10}
    else:
        raise ValueError(f"bad --deflate {mode!r}")
    return {"compression": None, "extensions": [factory(**params)]}

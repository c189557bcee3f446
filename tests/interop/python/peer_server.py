#!/usr/bin/env python3
"""Scenario server for Clarion's interop tests, on Python `websockets`.

Implements the server half of the scenario spec in ../README.md:

    peer_server.py --port P [--host H] [--tls-cert FILE --tls-key FILE] [--deflate MODE]

Prints exactly one line `LISTENING <port>` to stdout once it accepts
connections, then serves until SIGTERM or SIGINT and exits with status 0.
"""

import argparse
import asyncio
import signal
import ssl
import sys

from scenario import (  # first: configures websockets
    DEFLATE_MODES,
    MAX_MESSAGE,
    deflate_options,
    send_fragments,
)

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

SUBPROTOCOLS = ("chat.v2", "chat.v1")
# Close codes an endpoint may send (RFC 6455 7.4 plus the 1012-1014 IANA
# additions); both `websockets` and Node `ws` refuse to send the others.
SENDABLE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True, help="0 picks a free port")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--tls-cert", help="PEM certificate (chain): serve wss")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--deflate", choices=DEFLATE_MODES, default="off", help="permessage-deflate")
    args = p.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    return args


def select_subprotocol(connection, offered):
    """Pick chat.v2, else chat.v1, else none.

    websockets' default selection rejects a client that offers no
    subprotocol when the server supports any; the spec wants those served.
    """
    for proto in SUBPROTOCOLS:
        if proto in offered:
            return proto
    return None


async def echo(ws):
    async for message in ws:  # str for text, bytes for binary
        await ws.send(message)


async def close_with(ws, code_text):
    code = int(code_text) if code_text.isdigit() else 0
    if code in SENDABLE:
        await ws.close(code, "bye")
    else:
        await ws.close(1008, "bad close code")


async def ping_then_echo(ws):
    pong = await ws.ping(b"are-you-there")
    # Resolves only on a pong carrying this payload (or a later ping's).
    await pong
    await ws.send("pong:are-you-there")
    await echo(ws)


async def fragmented_then_echo(ws):
    await send_fragments(ws, ["frag-", "ment-", "ed"])
    await send_fragments(ws, [bytes([0, 1, 2]), bytes([3, 4])])
    await echo(ws)


async def handler(ws):
    path = ws.request.path.split("?", 1)[0]
    try:
        if path.startswith("/close/"):
            await close_with(ws, path[len("/close/") :])
        elif path == "/ping":
            await ping_then_echo(ws)
        elif path == "/fragmented":
            await fragmented_then_echo(ws)
        else:  # /echo, /subprotocol and any other path
            await echo(ws)
    except ConnectionClosed:
        pass


def tls_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


async def main(argv):
    args = parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    ssl_ctx = tls_context(args.tls_cert, args.tls_key) if args.tls_cert else None
    async with serve(
        handler,
        args.host,
        args.port,
        ssl=ssl_ctx,
        subprotocols=list(SUBPROTOCOLS),
        select_subprotocol=select_subprotocol,
        max_size=MAX_MESSAGE,
        ping_interval=None,  # no keepalive pings: peers see only scripted pings
        **deflate_options(args.deflate, server=True),
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"LISTENING {port}", flush=True)
        await stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

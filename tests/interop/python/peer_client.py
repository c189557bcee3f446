#!/usr/bin/env python3
"""Scenario client for Clarion's interop tests, on Python `websockets`.

Runs the client checks of the scenario spec in ../README.md against a
scenario server:

    peer_client.py BASE_URL [--ca FILE] [--only NAME,...] [--skip NAME,...]

Prints `PASS name` or `FAIL name: reason` per check, then `N passed, M failed`;
exits 0 only when every selected check passed (2 on bad arguments).
"""

import argparse
import asyncio
import ssl
import sys

from scenario import MAX_MESSAGE, send_fragments  # first: configures websockets

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10.0
BIG_TIMEOUT = 60.0
UNICODE = "héllo wörld ✓ 😀"


class CheckFailed(Exception):
    pass


def expect(ok, what):
    if not ok:
        raise CheckFailed(what)


def describe(message):
    kind = "text" if isinstance(message, str) else "binary"
    head = message[:40]
    more = "..." if len(message) > 40 else ""
    return f"{kind} {head!r}{more} ({len(message)} {'chars' if kind == 'text' else 'bytes'})"


def expect_message(got, want):
    same_type = isinstance(got, str) == isinstance(want, str)
    expect(same_type and got == want, f"expected {describe(want)}, got {describe(got)}")


def big_binary():
    n = 16 * 1024 * 1024
    pattern = bytes(range(251))  # byte i = i % 251
    return (pattern * (n // 251 + 1))[:n]


def big_text():
    n = 1024 * 1024
    alphabet = "abcdefghijklmnopqrstuvwxyz"  # char i = alphabet[i % 26]
    return (alphabet * (n // 26 + 1))[:n]


class Client:
    def __init__(self, base, ssl_ctx):
        self.base = base.rstrip("/")
        self.ssl_ctx = ssl_ctx

    def connect(self, path, **kwargs):
        return connect(
            self.base + path,
            ssl=self.ssl_ctx,
            compression=None,  # no permessage-deflate (yet)
            max_size=MAX_MESSAGE,
            ping_interval=None,  # no keepalive pings: only the checks' own
            open_timeout=TIMEOUT,
            close_timeout=5,
            **kwargs,
        )

    async def round_trip(self, ws, message):
        await ws.send(message)
        expect_message(await ws.recv(), message)

    async def check_text(self):
        async with self.connect("/echo") as ws:
            await self.round_trip(ws, "hello")
            await self.round_trip(ws, UNICODE)

    async def check_binary(self):
        async with self.connect("/echo") as ws:
            await self.round_trip(ws, bytes(range(256)))

    async def check_empty(self):
        async with self.connect("/echo") as ws:
            await self.round_trip(ws, "")
            await self.round_trip(ws, b"")

    async def check_big(self):
        async with self.connect("/echo") as ws:
            await self.round_trip(ws, big_binary())
            await self.round_trip(ws, big_text())

    async def check_fragmented_send(self):
        async with self.connect("/echo") as ws:
            await send_fragments(ws, ["frag-", "ment-", "ed"])
            expect_message(await ws.recv(), "frag-ment-ed")

    async def check_ping(self):
        async with self.connect("/echo") as ws:
            pong = await ws.ping(b"p1")
            # websockets resolves this future only for a pong whose payload
            # matches a pending ping (here only p1); others are ignored.
            await pong

    async def check_close_client(self):
        async with self.connect("/echo") as ws:
            await ws.close(4000, "done")
            # close_code is the code of the close frame received back.
            expect(ws.close_code == 4000, f"server's close code {ws.close_code}, want 4000")

    async def check_close_server(self):
        async with self.connect("/close/4001") as ws:
            try:
                message = await ws.recv()
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                expect(rcvd is not None, "connection closed without a close frame")
                expect(rcvd.code == 4001, f"close code {rcvd.code}, want 4001")
                expect(rcvd.reason == "bye", f"close reason {rcvd.reason!r}, want 'bye'")
            else:
                raise CheckFailed(f"expected a close, got {describe(message)}")

    async def check_server_ping(self):
        async with self.connect("/ping") as ws:
            expect_message(await ws.recv(), "pong:are-you-there")
            await self.round_trip(ws, "after-ping")

    async def check_fragmented_recv(self):
        async with self.connect("/fragmented") as ws:
            expect_message(await ws.recv(), "frag-ment-ed")
            expect_message(await ws.recv(), bytes([0, 1, 2, 3, 4]))

    async def check_subprotocol(self):
        async with self.connect("/subprotocol", subprotocols=["chat.v2"]) as ws:
            expect(ws.subprotocol == "chat.v2", f"subprotocol {ws.subprotocol!r}, want 'chat.v2'")
            await self.round_trip(ws, "hello")


CHECKS = [
    ("text", "check_text", TIMEOUT),
    ("binary", "check_binary", TIMEOUT),
    ("empty", "check_empty", TIMEOUT),
    ("big", "check_big", BIG_TIMEOUT),
    ("fragmented-send", "check_fragmented_send", TIMEOUT),
    ("ping", "check_ping", TIMEOUT),
    ("close-client", "check_close_client", TIMEOUT),
    ("close-server", "check_close_server", TIMEOUT),
    ("server-ping", "check_server_ping", TIMEOUT),
    ("fragmented-recv", "check_fragmented_recv", TIMEOUT),
    ("subprotocol", "check_subprotocol", TIMEOUT),
]


def names(text):
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_url", metavar="BASE_URL", help="ws://HOST:PORT or wss://HOST:PORT")
    p.add_argument("--ca", help="PEM file of the CA (or self-signed cert) to trust for wss")
    p.add_argument("--only", help="comma-separated checks to run")
    p.add_argument("--skip", help="comma-separated checks to leave out")
    args = p.parse_args(argv)
    known = {name for name, _, _ in CHECKS}
    unknown = [n for n in names(args.only) + names(args.skip) if n not in known]
    if unknown:
        p.error(f"unknown check(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    if not args.base_url.startswith(("ws://", "wss://")):
        p.error("BASE_URL must start with ws:// or wss://")
    return args


def tls_context(args):
    if not args.base_url.startswith("wss://"):
        return None
    return ssl.create_default_context(cafile=args.ca)


async def run_check(client, method, timeout):
    try:
        await asyncio.wait_for(getattr(client, method)(), timeout)
        return None
    except CheckFailed as exc:
        return str(exc)
    except asyncio.TimeoutError:
        return f"timed out after {timeout:g} s"
    except Exception as exc:  # any library or socket error is a failure
        return f"{type(exc).__name__}: {exc}"


async def main(argv):
    args = parse_args(argv)
    client = Client(args.base_url, tls_context(args))
    only, skip = set(names(args.only)), set(names(args.skip))
    passed = failed = 0
    for name, method, timeout in CHECKS:
        if (only and name not in only) or name in skip:
            continue
        reason = await run_check(client, method, timeout)
        if reason is None:
            passed += 1
            print(f"PASS {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {reason}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))

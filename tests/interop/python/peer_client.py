#!/usr/bin/env python3
"""Scenario client for Clarion's interop tests, on Python `websockets`.

Runs the client checks of the scenario spec in ../README.md against a
scenario server:

    peer_client.py BASE_URL [--ca FILE] [--only NAME,...] [--skip NAME,...] [--deflate MODE]

Prints `PASS name` or `FAIL name: reason` per check, then `N passed, M failed`;
exits 0 only when every selected check passed (2 on bad arguments).
"""

import argparse
import asyncio
import ssl
import sys

from scenario import (  # first: configures websockets
    DEFLATE_MODES,
    MAX_MESSAGE,
    deflate_options,
    send_fragments,
)

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.extensions.permessage_deflate import PerMessageDeflate

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


COMPRESSION_MESSAGE = 64 * 1024


def compressible_text():
    """JSON lines {"seq":N,"msg":"permessage-deflate round trip"}, cut at 64 KiB."""
    lines, size, seq = [], 0, 0
    while size < COMPRESSION_MESSAGE:
        line = f'{{"seq":{seq},"msg":"permessage-deflate round trip"}}\n'
        lines.append(line)
        size += len(line)
        seq += 1
    return "".join(lines)[:COMPRESSION_MESSAGE]


def far_repeats_binary():
    """A 2 KiB LCG block (x = 1664525 x + 1013904223 mod 2^32, top byte) to 64 KiB."""
    block, x = bytearray(), 1
    for _ in range(2048):
        x = (1664525 * x + 1013904223) % (1 << 32)
        block.append(x >> 24)
    return bytes(block) * (COMPRESSION_MESSAGE // 2048)


def deflate_params(header):
    """The permessage-deflate entry's parameters in a Sec-WebSocket-Extensions
    value, as {name: value or None}; None if it has no such entry."""
    for extension in (header or "").split(","):
        name, *params = [part.strip() for part in extension.split(";")]
        if name == "permessage-deflate":
            parsed = {}
            for param in filter(None, params):
                key, _, value = param.partition("=")
                parsed[key.strip()] = value.strip().strip('"') or None
            return parsed
    return None


def check_answer(mode, header):
    """Whether the server's Sec-WebSocket-Extensions answer suits MODE."""
    params = deflate_params(header)
    shown = f"Sec-WebSocket-Extensions: {header or ''!r}"
    if mode == "off":
        expect(params is None, f"permessage-deflate negotiated without an offer ({shown})")
        return
    expect(params is not None, f"permessage-deflate not negotiated ({shown})")
    if mode == "no-context":
        granted = "server_no_context_takeover" in params
        expect(granted, f"server_no_context_takeover asked for but not granted ({shown})")
    elif mode == "window10":
        bits = params.get("server_max_window_bits") or ""
        granted = bits.isdigit() and 8 <= int(bits) <= 10
        expect(granted, f"server_max_window_bits=10 asked for but not granted ({shown})")


class Client:
    def __init__(self, base, ssl_ctx, deflate):
        self.base = base.rstrip("/")
        self.ssl_ctx = ssl_ctx
        self.deflate = deflate

    def connect(self, path, **kwargs):
        return connect(
            self.base + path,
            ssl=self.ssl_ctx,
            **deflate_options(self.deflate, server=False),
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

    async def check_compression(self):
        async with self.connect("/echo") as ws:
            answers = ws.response.headers.get_all("Sec-WebSocket-Extensions")
            check_answer(self.deflate, ", ".join(answers) or None)
            active = any(isinstance(e, PerMessageDeflate) for e in ws.protocol.extensions)
            want = self.deflate != "off"
            expect(active == want, f"permessage-deflate active: {active}, want {want}")
            text = compressible_text()
            for message in ["hello", text, text, far_repeats_binary()]:
                await self.round_trip(ws, message)


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
    ("compression", "check_compression", TIMEOUT),
]


def names(text):
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base_url", metavar="BASE_URL", help="ws://HOST:PORT or wss://HOST:PORT")
    p.add_argument("--ca", help="PEM file of the CA (or self-signed cert) to trust for wss")
    p.add_argument("--only", help="comma-separated checks to run")
    p.add_argument("--skip", help="comma-separated checks to leave out")
    p.add_argument("--deflate", choices=DEFLATE_MODES, default="off", help="permessage-deflate")
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
    client = Client(args.base_url, tls_context(args), args.deflate)
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

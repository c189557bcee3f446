#!/usr/bin/env python3
"""Renders the JSON lines of bench/run-matrix.sh as Markdown tables.

usage: bench/render.py RESULTS.jsonl > RESULTS.md

The first line of the file describes the machine and the method; each other
line is one run of `clarion bench` with the cell it belongs to. Repeated
cells show their median with the min-max spread in parentheses. Python 3
standard library only.
"""

import json
import statistics
import sys

SERVER_ORDER = ["tcp", "clarion", "fastwebsockets", "tungstenite"]
BUSY_MARK = "†"

# (column title, path into the result, formatter)
ECHO_COLUMNS = [
    ("msgs/s", ("msgs_per_sec",), "int"),
    ("server CPU µs/msg", ("server_cpu_us_per_msg",), "num"),
    ("MB/s", ("mb_per_sec",), "num"),
    ("p50 µs", ("latency_us", "p50"), "num"),
    ("p99 µs", ("latency_us", "p99"), "num"),
]

# The other sections: (title, [(column title, flattened result field, format)]).
SECTIONS = {
    "latency": (
        "Latency at a fixed rate (open loop, from the intended send time)",
        [
            ("conns", "connections", "int"),
            ("rate/s", "rate", "int"),
            ("size", "size", "int"),
            ("msgs/s", "msgs_per_sec", "int"),
            ("p50 µs", "latency_us.p50", "num"),
            ("p90 µs", "latency_us.p90", "num"),
            ("p99 µs", "latency_us.p99", "num"),
            ("p99.9 µs", "latency_us.p999", "num"),
            ("max µs", "latency_us.max", "num"),
            ("server CPU µs/msg", "server_cpu_us_per_msg", "num"),
            ("client send lag p99 µs", "send_lag_us.p99", "num"),
            ("unanswered", "unanswered", "int"),
            ("errors", "errors", "int"),
        ],
    ),
    "idle": (
        "Idle connections",
        [
            ("conns", "connections", "int"),
            ("bytes per connection", "bytes_per_connection", "int"),
            ("RSS before KiB", "server_rss_before_kib", "int"),
            ("RSS open KiB", "server_rss_kib", "int"),
            ("RSS after close KiB", "server_rss_after_close_kib", "int"),
            ("opens/s", "opens_per_sec", "int"),
            ("errors", "errors", "int"),
        ],
    ),
    "connect": (
        "Connection rate (connect, handshake, close)",
        [
            ("concurrency", "concurrency", "int"),
            ("handshakes/s", "handshakes_per_sec", "int"),
            ("p50 µs", "latency_us.p50", "num"),
            ("p99 µs", "latency_us.p99", "num"),
            ("server CPU µs/handshake", "server_cpu_us_per_handshake", "num"),
            ("errors", "errors", "int"),
        ],
    ),
}


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2])
    meta, rows = load(argv[1])
    quiet = int(meta.get("quiet_idle", 0) or 0)
    for row in rows:
        row["busy"] = int(row.get("quiet_idle_pct", 100)) < quiet
    out = [header(meta)]
    echo = [r for r in rows if r["section"] == "echo"]
    if echo:
        out.append(echo_table(echo))
    for section, (title, columns) in SECTIONS.items():
        section_rows = [r for r in rows if r["section"] == section]
        if section_rows:
            out.append(section_table(title, section_rows, columns))
    if any(row["busy"] for row in rows):
        out.append(
            f"{BUSY_MARK} At least one run of this row started while a pinned core was "
            f"less than {quiet}% idle (another process was busy; the wait for a quiet "
            "machine timed out): its numbers are suspect."
        )
    print("\n\n".join(out))


def load(path):
    meta, rows = {}, []
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("section") == "meta":
                meta = row
            else:
                rows.append(row)
    return meta, rows


def header(meta):
    get = lambda key: meta.get(key, "?")
    mem_gib = int(meta.get("mem_kib", 0) or 0) / (1 << 20)
    quick = " (QUICK smoke run: numbers are indicative only)" if get("quick") == "1" else ""
    return "\n".join(
        [
            f"# Clarion benchmark matrix, {get('date')}{quick}",
            "",
            f"- machine: `{get('host')}`, {get('cpu_model')}, {get('nproc')} cores, "
            f"{mem_gib:.0f} GiB, {get('kernel')}",
            f"- build: {get('rustc')}, clarion {get('commit')}; peers: {get('peers')}",
            f"- method: each server alone on core {get('server_cpu')} (`taskset`, tokio "
            f"current-thread runtime), `clarion bench --threads 1` on core "
            f"{get('client_cpu')}; a fresh server process per run; before each run both "
            f"cores ≥ {get('quiet_idle')}% idle (sampled from /proc/stat); "
            f"{get('warmup')} s warm-up, {get('duration')} s measured; "
            f"{get('message')} messages; "
            + (
                f"every cell run {get('repeat')} times"
                if get("repeat_all") == "1"
                else f"cells with {get('key_conns')} connections run {get('repeat')} times"
            )
            + ": median (min–max).",
            "- server CPU µs/msg: the server process's user + system CPU time over the "
            "measured window divided by the messages echoed; the ratio columns divide it "
            "by fastwebsockets' and by the raw TCP echo's in the same cell "
            "(lower is better).",
        ]
    )


def echo_table(rows):
    cells = {}
    for row in rows:
        key = (row["size"], row["conns"], row["server"])
        cells.setdefault(key, []).append(row)
    titles = ["server", "size", "conns", "in flight"] + [c[0] for c in ECHO_COLUMNS]
    titles += ["CPU ÷ fastwebsockets", "CPU ÷ tcp", "runs", "errors"]
    lines = ["## Echo throughput", "", table_head(titles)]
    for key in sorted(cells, key=lambda k: (k[0], k[1], server_rank(k[2]))):
        size, conns, server = key
        runs = cells[key]
        results = [r["result"] for r in runs if r.get("result")]
        cols = [label(server, runs), size_label(size), str(conns), str(runs[0].get("inflight", ""))]
        if not results:
            error = next((r.get("error") for r in runs if r.get("error")), "failed")
            cols += [f"failed: {error}"] + [""] * (len(titles) - 5)
            lines.append(table_row(cols))
            continue
        for _, path, kind in ECHO_COLUMNS:
            cols.append(spread([dig(r, path) for r in results], kind))
        cpu = median_of(results, ("server_cpu_us_per_msg",))
        for peer in ("fastwebsockets", "tcp"):
            base = [r["result"] for r in cells.get((size, conns, peer), []) if r.get("result")]
            base_cpu = median_of(base, ("server_cpu_us_per_msg",))
            cols.append(ratio(cpu, base_cpu))
        errors = sum(dig(r, ("errors",)) or 0 for r in results)
        cols += [str(len(results)), str(errors)]
        lines.append(table_row(cols))
    return "\n".join(lines)


def section_table(title, rows, columns):
    """One row per server; `columns` picks and names the result's fields.
    Falls back to every scalar field when none of them is there."""
    by_server = {}
    for row in rows:
        by_server.setdefault(row["server"], []).append(row)
    flat_rows = [flatten(r.get("result") or {}) for r in rows]
    present = [c for c in columns if any(c[1] in f for f in flat_rows)]
    if not present:
        names = []
        for flat in flat_rows:
            names += [n for n in flat if n not in names]
        present = [(n, n, "num") for n in names]
    titles = ["server"] + [c[0] for c in present] + ["runs"]
    lines = [f"## {title}", "", table_head(titles)]
    for server in sorted(by_server, key=server_rank):
        runs = by_server[server]
        results = [flatten(r["result"]) for r in runs if r.get("result")]
        if not results:
            error = next((r.get("error") for r in runs if r.get("error")), "failed")
            lines.append(table_row([server, f"failed: {error}"] + [""] * len(present)))
            continue
        cols = [label(server, runs)]
        for _, name, kind in present:
            cols.append(spread([r.get(name) for r in results], kind))
        cols.append(str(len(results)))
        lines.append(table_row(cols))
    return "\n".join(lines)


def label(server, runs):
    """The server's name, marked when a run started on a busy machine."""
    return server + (BUSY_MARK if any(r["busy"] for r in runs) else "")


def flatten(value, prefix=""):
    """`{"a": {"b": 1}}` as `{"a.b": 1}`, numbers and strings only."""
    flat = {}
    for name, item in value.items():
        path = f"{prefix}{name}"
        if isinstance(item, dict):
            flat.update(flatten(item, path + "."))
        elif isinstance(item, (int, float, str)) and not isinstance(item, bool):
            flat[path] = item
    return flat


def dig(value, path):
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


def median_of(results, path):
    values = [v for v in (dig(r, path) for r in results) if isinstance(v, (int, float))]
    return statistics.median(values) if values else None


def spread(values, kind):
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        texts = sorted({str(v) for v in values if v is not None})
        return ", ".join(texts)
    mid = fmt(statistics.median(numbers), kind)
    if len(numbers) == 1 or min(numbers) == max(numbers):
        return mid
    return f"{mid} ({fmt(min(numbers), kind)}–{fmt(max(numbers), kind)})"


def fmt(value, kind):
    if kind == "int" or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(value, base):
    if value is None or not base:
        return ""
    return f"{value / base:.2f}×"


def size_label(size):
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


def server_rank(server):
    return SERVER_ORDER.index(server) if server in SERVER_ORDER else len(SERVER_ORDER)


def table_head(titles):
    return table_row(titles) + "\n" + table_row(["---"] * len(titles))


def table_row(cols):
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cols) + " |"


if __name__ == "__main__":
    main(sys.argv)

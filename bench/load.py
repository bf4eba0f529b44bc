"""Load generators for the serving benchmark and the load test: the same request mix driven by
`wrk` (C, so that the client takes little of the CPU it measures; Debian package `wrk`) or by an
asyncio httpx client in this process (no extra install; the client's own CPU cost then counts
against the server on a small machine).

A mix is a list of `Call`s; each connection sends them round-robin, starting at its own offset,
so every route gets its share. Both generators report requests, errors (socket errors, timeouts,
answers other than the expected status, and, for httpx, failed content checks) and latency
percentiles over all calls. (wrk counts answers ≥ 400 as status errors; the service answers no 3xx.)
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    status: int = 200
    check: Callable[[httpx.Response], bool] | None = None  # httpx only: content check of the answer


@dataclass
class LoadResult:
    generator: str
    connections: int
    seconds: float
    requests: int
    errors: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict:
        return {key: round(value, 2) if isinstance(value, float) else value for key, value in asdict(self).items()}


def multipart(field_name: str, filename: str, content: bytes, content_type: str = "image/png") -> tuple[dict, bytes]:
    """(headers, body) of a multipart/form-data upload of one file, built by httpx."""
    request = httpx.Request("POST", "http://x/", files={field_name: (filename, content, content_type)})
    return {"Content-Type": request.headers["Content-Type"]}, request.read()


# --- wrk ---------------------------------------------------------------------------------------

WRK_SCRIPT = """
local calls = {calls}
local counter = 0
init = function(args) counter = math.random(0, #calls - 1) end
request = function()
  counter = counter + 1
  local call = calls[(counter % #calls) + 1]
  return wrk.format(call.method, call.path, call.headers, call.body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, '
    .. '"timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def _lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{byte:03d}" for byte in data) + '"'


def _lua_calls(calls: list[Call]) -> str:
    entries = []
    for call in calls:
        headers = ", ".join(f"[{_lua_string(k.encode())}] = {_lua_string(v.encode())}" for k, v in call.headers.items())
        entries.append(f"{{method = {_lua_string(call.method.encode())}, path = {_lua_string(call.path.encode())}, "
                       f"headers = {{{headers}}}, body = {_lua_string(call.body) if call.body else 'nil'}}}")
    return "{" + ",\n".join(entries) + "}"


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, calls: list[Call], connections: int, seconds: float, threads: int = 1) -> LoadResult:
    """`wrk` with `connections` keep-alive connections for `seconds`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(calls=_lua_calls(calls)))
    try:
        output = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
             "-s", script.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout
    finally:
        Path(script.name).unlink()
    figures = json.loads(output.strip().splitlines()[-1])
    errors = sum(figures[key] for key in ("connect", "read", "write", "status", "timeout"))
    duration = figures["duration_us"] / 1e6
    return LoadResult("wrk", connections, duration, figures["requests"], errors, figures["requests"] / duration,
                      figures["p50_us"] / 1000, figures["p99_us"] / 1000, figures["max_us"] / 1000)


# --- httpx -------------------------------------------------------------------------------------


async def _client_loop(client: httpx.AsyncClient, calls: list[Call], offset: int, deadline: float,
                       latencies: list[float], failures: list[str]) -> None:
    index = offset
    while time.perf_counter() < deadline:
        call = calls[index % len(calls)]
        index += 1
        started = time.perf_counter()
        try:
            response = await client.request(call.method, call.path, headers=call.headers, content=call.body or None)
        except httpx.HTTPError as error:
            failures.append(f"{call.method} {call.path}: {type(error).__name__}: {error}")
            continue
        latencies.append(time.perf_counter() - started)
        if response.status_code != call.status:
            failures.append(f"{call.method} {call.path}: {response.status_code} {response.text[:200]}")
        elif call.check is not None and not call.check(response):
            failures.append(f"{call.method} {call.path}: content check failed")


async def _run_httpx(url: str, calls: list[Call], connections: int, seconds: float) -> tuple[LoadResult, list[str]]:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    latencies: list[float] = []
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(_client_loop(client, calls, offset, deadline, latencies, failures)
                               for offset in range(connections)))
        elapsed = time.perf_counter() - started
    ms = np.array(latencies or [0.0]) * 1000
    result = LoadResult("httpx", connections, elapsed, len(latencies), len(failures), len(latencies) / elapsed,
                        float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max()))
    return result, failures


def run_httpx(url: str, calls: list[Call], connections: int, seconds: float) -> tuple[LoadResult, list[str]]:
    """`connections` concurrent clients in this process for `seconds`; also returns what failed.

    The event loop runs in a thread of its own, so a caller whose thread already runs one (pytest
    after Playwright's sync API, a notebook) can use it too.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _run_httpx(url, calls, connections, seconds)).result()

"""Following a job over HTTP: its Server-Sent Events up to the end."""

import json
import time

import httpx


def follow(client: httpx.Client, job: dict, timeout: float = 300) -> list[tuple[str, str | None, dict]]:
    """The job's Server-Sent Events, (event, id, data), up to and including `end`."""
    events, fields = [], {}
    deadline = time.monotonic() + timeout
    with client.stream("GET", job["events_url"], timeout=httpx.Timeout(10, read=timeout)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"no end event within {timeout} s: {events}"
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "data" in fields:
                events.append((fields.get("event"), fields.get("id"), json.loads(fields["data"])))
                if fields.get("event") == "end":
                    return events
            fields = {}
    raise AssertionError(f"the stream closed before its end event: {events}")

"""Serving figures: issue 3's benchmark and issue 5's load. Prints JSON lines; `--out` writes them.

1. floor: POST /classify (one 28×28 PNG digit) and GET /sample?n=16, each alone at 32 connections,
   against bare routes on the same server (bench/bare_app.py) that take the same upload or answer a
   constant PNG: throughput ratio, p50/p99. With `--rounds N` the four runs are repeated N times,
   interleaved, and medians reported, so that a change in the machine's load hits every route.
2. mixed: POST /classify, GET /sample and GET /jobs/{id} round-robin at 32 and 128 connections:
   requests served, errors, p50/p99, the server's peak RSS.
3. training: POST /classify latency while a training job runs in the embedded worker, against idle.

The server is `uvicorn` as in production (one process, access log on, written to a file), on
127.0.0.1 only, with a model trained first with the API's default sizes (one epoch of digits5k).
Every run also reports the server process's CPU time per request (`server_cpu_ms_per_request`,
from /proc), which time-sharing of a busy core does not change. `--code DIR` serves the service's
code from DIR, e.g. a `git worktree` of an older commit, for before/after figures.

    apt-get install wrk        # the load generator; without it: --generator httpx
    .venv/bin/python bench/serving.py --out out/serving.json
    .venv/bin/python bench/serving.py --only floor --seconds 10
    git worktree add /tmp/before <commit>
    taskset -c 1 .venv/bin/python bench/serving.py --only floor --rounds 5 --seconds 8 --code /tmp/before
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from adgm_core.cpu import cpu_info  # noqa: E402
from adgm_core.data import load_builtin  # noqa: E402
from bench.api_process import ApiProcess, train_models  # noqa: E402
from bench.load import Call, multipart, run_httpx, run_wrk, wrk_available  # noqa: E402

BENCH_APP = ["--factory", "bare_app:create_app", "--app-dir", str(REPO_ROOT / "bench")]  # the service + bare routes


def digit_png() -> bytes:
    _train, test = load_builtin("digits5k")
    buffer = io.BytesIO()
    Image.fromarray(test.images[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def is_png(response: httpx.Response) -> bool:
    return response.content.startswith(b"\x89PNG") and Image.open(io.BytesIO(response.content)).size[0] > 0


def is_classification(response: httpx.Response) -> bool:
    probabilities = response.json()["results"][0]["probabilities"]
    return len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-3


def calls(job_id: str) -> dict[str, Call]:
    headers, body = multipart("files", "digit.png", digit_png())
    return {
        "classify": Call("POST", "/classify", headers, body, check=is_classification),
        "bare_upload": Call("POST", "/bench/bare", headers, body),
        "sample": Call("GET", "/sample?label=3&n=16&seed=1", check=is_png),
        "bare_png": Call("GET", "/bench/bare", check=is_png),
        "job": Call("GET", f"/jobs/{job_id}", check=lambda response: response.json()["id"] == job_id),
    }


class Bench:
    def __init__(self, generator: str, seconds: float):
        self.generator, self.seconds = generator, seconds

    def load(self, server: ApiProcess, mix: list[Call], connections: int, seconds: float | None = None) -> dict:
        seconds = seconds or self.seconds
        load_before, cpu_before = os.getloadavg()[0], server.cpu_seconds()
        if self.generator == "wrk":
            result, failures = run_wrk(server.url, mix, connections, seconds), []
        else:
            result, failures = run_httpx(server.url, mix, connections, seconds)
        figures = result.as_dict()
        figures["server_cpu_ms_per_request"] = round(1000 * (server.cpu_seconds() - cpu_before) / max(1, result.requests), 3)
        figures["load_average_1m_before"] = round(load_before, 2)
        if failures:
            figures["first_failures"] = failures[:5]
        return figures

    def warm(self, server: ApiProcess, mix: list[Call]) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for call in mix:
                response = client.request(call.method, call.path, headers=call.headers, content=call.body or None)
                assert response.status_code == call.status, response.text
                assert call.check is None or call.check(response), f"{call.path}: unexpected answer"
        self.load(server, mix, 4, seconds=min(2.0, self.seconds))


def floor(bench: Bench, server: ApiProcess, routes: dict[str, Call], rounds: int, connections: int = 32) -> dict:
    names = ("classify", "bare_upload", "sample", "bare_png")
    for name in names:
        bench.warm(server, [routes[name]])
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for _ in range(rounds):  # interleaved: a change in the machine's load hits every route
        for name in names:
            runs[name].append(bench.load(server, [routes[name]], connections))
    figures = {name: medians(runs[name]) for name in names}
    for name, bare in (("classify", "bare_upload"), ("sample", "bare_png")):
        figures[f"{name}_vs_floor_throughput"] = round(
            figures[name]["requests_per_second"] / figures[bare]["requests_per_second"], 3)
        figures[f"{name}_vs_floor_p99"] = round(figures[name]["p99_ms"] / figures[bare]["p99_ms"], 2)
        figures[f"{name}_vs_floor_cpu_per_request"] = round(
            figures[name]["server_cpu_ms_per_request"] / figures[bare]["server_cpu_ms_per_request"], 2)
    return figures


def medians(runs: list[dict]) -> dict:
    """The runs' medians of every figure (the one run when there is one), with each run's throughput."""
    if len(runs) == 1:
        return runs[0]
    figures = {key: round(statistics.median(run[key] for run in runs), 2) for key, value in runs[0].items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    return {**figures, "rounds": len(runs), "requests_per_second_each": [run["requests_per_second"] for run in runs]}


def mixed(bench: Bench, server: ApiProcess, routes: dict[str, Call]) -> dict:
    mix = [routes["classify"], routes["sample"], routes["job"]]
    bench.warm(server, mix)
    figures = {f"c{connections}": bench.load(server, mix, connections) for connections in (32, 128)}
    figures["server_peak_rss_mib"] = round(server.peak_rss_mib(), 1)
    return figures


def during_training(bench: Bench, server: ApiProcess, routes: dict[str, Call]) -> dict:
    """Classify at 1 and 32 connections, idle and while the embedded worker trains a long job."""
    mix = [routes["classify"]]
    bench.warm(server, mix)
    figures = {"idle": {f"c{c}": bench.load(server, mix, c) for c in (1, 32)}}
    with httpx.Client(base_url=server.url, timeout=60) as client:
        job = client.post("/train", json={"epochs": 500, "name": "background training"}).json()
        deadline = time.monotonic() + 300
        while not client.get(f"/jobs/{job['id']}").json()["history"]:  # past data loading and the first epoch
            if time.monotonic() > deadline:
                raise RuntimeError("the background job did not start")
            time.sleep(0.5)
        figures["training"] = {f"c{c}": bench.load(server, mix, c) for c in (1, 32)}
        running = client.get(f"/jobs/{job['id']}").json()
        figures["training"]["job_status_during"] = running["status"]
        figures["training"]["training_examples_per_second"] = running["progress"]["examples_per_second"]
        client.post(f"/jobs/{job['id']}/cancel")
    for c in ("c1", "c32"):
        for percentile in ("p50_ms", "p99_ms"):
            figures[f"{c}_{percentile}_training_over_idle"] = round(
                figures["training"][c][percentile] / figures["idle"][c][percentile], 2)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["floor", "mixed", "training"], action="append")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each measured run")
    parser.add_argument("--generator", choices=["wrk", "httpx"], default="wrk" if wrk_available() else "httpx")
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--rounds", type=int, default=1, help="floor: interleaved repetitions; medians are reported")
    parser.add_argument("--code", type=Path, default=REPO_ROOT,
                        help="serve the service's code (app, store, adgm_core) from this directory")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    scenarios = args.only or ["floor", "mixed", "training"]
    bench = Bench(args.generator, args.seconds)
    results = {"machine": {"cpu": cpu_info().as_dict(), "platform": platform.platform(),
                           "python": platform.python_version(),
                           "generator": args.generator, "seconds_per_run": args.seconds, "rounds": args.rounds,
                           "code": str(args.code.resolve())}}
    with tempfile.TemporaryDirectory(prefix="adgm-serving-") as directory:
        state = Path(directory)
        [(job_id, model_id)] = train_models(state, 1, "serving benchmark")
        results["model"] = {"id": model_id, "sizes": "API defaults (hidden [256, 128], z 32, a 32, SDGM)"}
        routes = calls(job_id)
        for scenario in scenarios:
            server = ApiProcess(state, args.port, BENCH_APP, code=args.code,
                                embedded_workers=1 if scenario == "training" else 0)
            try:
                if scenario == "floor":
                    results[scenario] = floor(bench, server, routes, args.rounds)
                else:
                    results[scenario] = {"mixed": mixed, "training": during_training}[scenario](bench, server, routes)
            finally:
                server.stop()
            print(json.dumps({scenario: results[scenario]}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

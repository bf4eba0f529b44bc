"""The API process's weight: resident memory at start and with models loaded, and the time from
launch to a healthy answer (issue 18: at most 300 MB with 3 models, under 2 s to healthy).

The API is started as scripts/serve.sh starts it (`uvicorn app.main:app`, one process), with no
embedded training worker (ADGM_EMBEDDED_WORKERS=0: a worker is a process of its own, not the API's
memory) on a store holding `--models` models trained first (the API's default sizes, one epoch of
digits5k each). For each launch it measures:

- `healthy_s`: from the launch to the first 200 of GET /healthz (polled every 10 ms), and
  `healthy_cpu_s`, the API process's CPU time (user + system) by then, which a busy machine's
  time-sharing does not inflate;
- `rss_mib`: the API process's resident set (VmRSS) when healthy, after POST /classify?novelty=true
  and GET /sample?n=16 on each model in turn, then after GET /models/{id}/export (the ONNX export,
  the route that imports torch), and the peak (VmHWM);
- `torch_loaded`: whether libtorch is mapped into the process, at each of those points.

`--code NAME=DIR` (repeatable) serves the service's code from DIR (e.g. `git archive` of an older
commit) under NAME; launches are interleaved across the codes, `--launches` times, and medians
reported. The answers of /classify (probabilities and novelty) and /sample (pixels) of every code
are compared with the first code's.

    taskset -c 1 env OMP_NUM_THREADS=1 .venv/bin/python bench/api_footprint.py --code before=/tmp/before --code after=.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from adgm_core.cpu import cpu_info  # noqa: E402
from adgm_core.data import load_builtin  # noqa: E402
from app.schemas import JobCreate  # noqa: E402
from store.config import Settings  # noqa: E402
from store.db import make_engine, make_sessionmaker  # noqa: E402
from store.jobs import JobStore  # noqa: E402
from store.schema import migrate  # noqa: E402
from store.tables import Job  # noqa: E402

BIN = Path(sys.executable).parent
DIGITS = 8  # test digits classified per request


def train_models(state: Path, count: int) -> list[str]:
    """`count` models of the API's default sizes, one epoch of digits5k each (seeds 0, 1, ...)."""
    from worker.training import JobRunner

    settings = Settings(_env_file=None, database_url=f"sqlite:///{state / 'adgm.sqlite'}",
                        artifact_dir=state / "artifacts", mnist_dir=None, embedded_workers=0)
    engine = make_engine(settings.database_url)
    migrate(engine)
    store = JobStore(make_sessionmaker(engine))
    model_ids = []
    for seed in range(count):
        params = JobCreate(epochs=1, seed=seed, name=f"footprint {seed}").params()
        job = store.create(params, params["dataset"], params["name"])
        assert JobRunner(settings, store).run(job.id) == "succeeded"
        with store.sessions() as session:
            model_ids.append(session.get(Job, job.id).model_id)
    engine.dispose()
    return model_ids


class Api:
    """`uvicorn app.main:app` on the benchmark's store, serving the code in `code`."""

    def __init__(self, state: Path, code: Path, port: int):
        env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
        env.update(PYTHONPATH=str(code), ADGM_DATABASE_URL=f"sqlite:///{state / 'adgm.sqlite'}",
                   ADGM_ARTIFACT_DIR=str(state / "artifacts"), ADGM_MNIST_DIR="", ADGM_EMBEDDED_WORKERS="0")
        self.url = f"http://127.0.0.1:{port}"
        try:
            httpx.get(f"{self.url}/healthz", timeout=2)
            raise RuntimeError(f"something already answers on port {port}; choose another with --port")
        except httpx.TransportError:
            pass
        self.log = open(state / f"uvicorn-{port}.log", "ab")
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(BIN / "uvicorn"), "app.main:app", "--app-dir", str(code), "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=state, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"uvicorn did not start; its log ends:\n{Path(self.log.name).read_text()[-3000:]}")
            time.sleep(0.01)
        self.healthy_s = time.perf_counter() - started
        self.healthy_cpu_s = self.cpu_seconds()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) of the API process so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _status(self, field: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError(f"no {field}")

    def rss_mib(self) -> float:
        return round(self._status("VmRSS"), 1)

    def peak_rss_mib(self) -> float:
        return round(self._status("VmHWM"), 1)

    def torch_loaded(self) -> bool:
        return "libtorch_cpu" in Path(f"/proc/{self.process.pid}/maps").read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def digit_pngs() -> list[bytes]:
    _train, test = load_builtin("digits5k")
    pngs = []
    for image in test.images[:DIGITS]:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        pngs.append(buffer.getvalue())
    return pngs


def launch(state: Path, code: Path, port: int, model_ids: list[str], pngs: list[bytes]) -> tuple[dict, dict]:
    """One launch's figures, and its answers: {model id: (probabilities, novelty, sample pixels)}."""
    api = Api(state, code, port)
    try:
        figures = {"healthy_s": round(api.healthy_s, 3), "healthy_cpu_s": round(api.healthy_cpu_s, 2), "rss_mib": {"healthy": api.rss_mib()},
                   "torch_loaded": {"healthy": api.torch_loaded()}}
        answers = {}
        files = [("files", (f"{i}.png", png, "image/png")) for i, png in enumerate(pngs)]
        with httpx.Client(base_url=api.url, timeout=120) as client:
            for count, model_id in enumerate(model_ids, 1):
                classified = client.post("/classify", params={"model": model_id, "novelty": "true"}, files=files)
                assert classified.status_code == 200, classified.text
                sampled = client.get("/sample", params={"model": model_id, "label": 3, "n": 16, "seed": 1})
                assert sampled.status_code == 200, sampled.text
                results = classified.json()["results"]
                answers[model_id] = (np.array([r["probabilities"] for r in results]),
                                     np.array([r["novelty"] for r in results]),
                                     np.asarray(Image.open(io.BytesIO(sampled.content))))
                figures["rss_mib"][f"{count}_models"] = api.rss_mib()
                figures["torch_loaded"][f"{count}_models"] = api.torch_loaded()
            exported = client.get(f"/models/{model_ids[0]}/export")
            assert exported.status_code == 200, exported.text
            figures["rss_mib"]["after_onnx_export"] = api.rss_mib()
            figures["torch_loaded"]["after_onnx_export"] = api.torch_loaded()
        figures["rss_mib"]["peak"] = api.peak_rss_mib()
        return figures, answers
    finally:
        api.stop()


def summary(runs: list[dict]) -> dict:
    """Medians over launches of every figure; the launch-to-healthy times listed."""
    first = runs[0]
    return {
        "healthy_s": round(statistics.median(run["healthy_s"] for run in runs), 3),
        "healthy_s_each": [run["healthy_s"] for run in runs],
        "healthy_cpu_s": round(statistics.median(run["healthy_cpu_s"] for run in runs), 2),
        "rss_mib": {key: round(statistics.median(run["rss_mib"][key] for run in runs), 1) for key in first["rss_mib"]},
        "torch_loaded": first["torch_loaded"],
    }


def differences(reference: dict, answers: dict) -> dict:
    """The largest differences of these answers from the reference's, over every model."""
    return {
        "probabilities_max_abs": float(max(np.abs(answers[m][0] - reference[m][0]).max() for m in reference)),
        "novelty_max_abs": float(max(np.abs(answers[m][1] - reference[m][1]).max() for m in reference)),
        "sample_pixels_max_abs": int(max(np.abs(answers[m][2].astype(int) - reference[m][2]).max() for m in reference)),
        "sample_pixels_differing": float(np.mean([(answers[m][2] != reference[m][2]).mean() for m in reference])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", action="append", metavar="NAME=DIR",
                        help="serve the service's code from DIR under NAME (repeatable; default: this checkout)")
    parser.add_argument("--models", type=int, default=3, help="models trained, then loaded by each launch")
    parser.add_argument("--launches", type=int, default=3, help="launches of each code, interleaved")
    parser.add_argument("--port", type=int, default=18791)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stops the API it started (finally) and its store
    codes = dict(item.split("=", 1) for item in args.code) if args.code else {"this": str(REPO_ROOT)}
    codes = {name: Path(directory).resolve() for name, directory in codes.items()}
    results = {"machine": {"cpu": cpu_info().as_dict(), "platform": platform.platform(),
                           "python": platform.python_version(), "cpus_allowed": len(os.sched_getaffinity(0))},
               "codes": {name: str(directory) for name, directory in codes.items()}, "models": args.models}
    print(json.dumps({"machine": results["machine"]}), flush=True)
    pngs = digit_pngs()
    with tempfile.TemporaryDirectory(prefix="adgm-footprint-") as directory:
        state = Path(directory)
        model_ids = train_models(state, args.models)
        runs: dict[str, list[dict]] = {name: [] for name in codes}
        answers: dict[str, dict] = {}
        for _ in range(args.launches):
            for name, code in codes.items():
                figures, answers[name] = launch(state, code, args.port, model_ids, pngs)
                runs[name].append(figures)
    reference = next(iter(codes))
    for name in codes:
        results[name] = summary(runs[name])
        if name != reference:
            results[name][f"answers_vs_{reference}"] = differences(answers[reference], answers[name])
        print(json.dumps({name: results[name]}), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

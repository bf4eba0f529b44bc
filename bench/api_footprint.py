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
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from adgm_core.cpu import cpu_info  # noqa: E402
from adgm_core.data import load_builtin  # noqa: E402
from bench.api_process import ApiProcess, train_models  # noqa: E402

DIGITS = 8  # test digits classified per request


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
    api = ApiProcess(state, port, ["app.main:app", "--app-dir", str(code)], code=code, poll_seconds=0.01)
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
        model_ids = [model_id for _job, model_id in train_models(state, args.models, "footprint")]
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

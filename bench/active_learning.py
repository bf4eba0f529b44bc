"""The label-efficient loop on the user's path: the service in-process, the hidden labels play the user.

For each seed and strategy the pool (a fixed random subset of MNIST's training images, no labels)
is uploaded as .npz to the API (FastAPI's TestClient over app.main, a temporary SQLite store), one
label per class drawn by the seed is added through POST /datasets/{id}/labels and a cold model is
trained. Then, round by round up to each size of --labels: GET /datasets/{id}/suggestions with the
current model and the strategy, POST the true labels of the suggested images, and retrain with the
page's own request, POST /train {dataset, use_all_labels, init_model} (the preset, its warm-start
rule and the label log's version all resolved by the service). Each job is run by the worker's own
code (worker.training.JobRunner.run, what an embedded worker or a Celery task calls) in this
process, so its CPU time is the job's. After each round a cold job on the same labels (the page's
request without init_model) is the reference. Test error on MNIST's 10,000 test images.

    taskset -c 0 env OMP_NUM_THREADS=1 .venv/bin/python bench/active_learning.py --mnist-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from fastapi.testclient import TestClient

from adgm_core.checkpoint import load_model
from adgm_core.cpu import cpu_info
from adgm_core.data import ImageSet, load_mnist
from adgm_core.evaluation import error_rate
from app.main import create_app
from store.config import Settings
from store.db import make_engine, make_sessionmaker
from store.jobs import JobStore
from store.tables import Job
from worker.training import JobRunner


@dataclass
class Service:
    """The API and the worker's job runner on one temporary store."""

    client: TestClient
    settings: Settings
    runner: JobRunner

    @classmethod
    def start(cls, directory: Path) -> "Service":
        settings = Settings(
            _env_file=None, database_url=f"sqlite:///{directory / 'adgm.sqlite'}", artifact_dir=directory / "artifacts",
            broker_url=None, api_key=None, mnist_dir=None, embedded_workers=0, api_torch_threads=1,
            worker_torch_threads=None, checkpoint_every=1000,
        )
        client = TestClient(create_app(settings))
        client.__enter__()  # the lifespan: migrations, the store
        store = JobStore.from_settings(make_sessionmaker(make_engine(settings.database_url)), settings)
        return cls(client, settings, JobRunner(settings, store))

    def stop(self) -> None:
        self.client.__exit__(None, None, None)

    def call(self, method: str, url: str, **kwargs) -> dict:
        response = self.client.request(method, url, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text}")
        return response.json()

    def upload(self, images: np.ndarray, name: str) -> str:
        buffer = io.BytesIO()
        np.savez(buffer, images=images, labels=np.full(len(images), -1, dtype=np.int64), n_classes=np.int64(10))
        answer = self.call("POST", "/datasets", files={"file": (f"{name}.npz", buffer.getvalue(), "application/octet-stream")},
                           data={"name": name})
        return answer["id"]

    def label(self, dataset: str, indices: np.ndarray, truth: np.ndarray) -> None:
        self.call("POST", f"/datasets/{dataset}/labels", json=[{"index": int(i), "label": int(truth[i])} for i in indices])

    def suggest(self, dataset: str, model: str, n: int, strategy: str, seed: int) -> np.ndarray:
        name, diverse = strategy.removesuffix("+diverse"), strategy.endswith("+diverse")
        answer = self.call("GET", f"/datasets/{dataset}/suggestions",
                           params=dict(model=model, n=n, strategy=name, diverse=diverse, seed=seed))
        return np.array([item["index"] for item in answer["suggestions"]])

    def train(self, dataset: str, init_model: str | None, extra: dict) -> tuple[str, dict, float]:
        """The page's retrain request (warm from `init_model`, else cold), run to the end by the
        worker's code: the model's id, the job's resolved params and the job's CPU seconds."""
        body = dict(dataset=dataset, use_all_labels=True, **extra)
        if init_model is not None:
            body["init_model"] = init_model
        job = self.call("POST", "/train", json=body)
        started = time.process_time()
        outcome = self.runner.run(job["id"])
        seconds = time.process_time() - started
        if outcome != "succeeded":
            raise RuntimeError(f"job {job['id']}: {outcome}")
        with self.runner.store.sessions() as session:
            model_id = session.get(Job, job["id"]).model_id
        return model_id, job["params"], seconds

    def test_error(self, model_id: str, test: ImageSet, samples: int) -> float:
        model, _card = load_model(self.settings.artifacts.model_dir(model_id))
        return error_rate(model.eval(), test.images, test.labels, samples)


def run(args) -> dict:
    train_set, test = load_mnist(args.mnist_dir)
    pick = np.random.default_rng(12345).permutation(len(train_set))[:args.pool]
    images, truth = train_set.images[pick], train_set.labels[pick]
    extra = json.loads(args.job)  # fields added to every POST /train body (e.g. a smaller model for the smoke run)
    warm_extra = {**extra, **({"epochs": args.warm_epochs} if args.warm_epochs else {})}
    sizes = labels_of(args.labels, args.strategies)
    results: dict = {"labels": sorted(set(sum(sizes.values(), []))), "cpu": cpu_info().name, "pool": args.pool, "runs": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory:
        service = Service.start(Path(directory))
        try:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                rng = np.random.default_rng(seed)
                start = np.array([rng.choice(np.flatnonzero(truth == k)) for k in range(10)])
                first_set = service.upload(images, f"pool-{seed}")
                service.label(first_set, start, truth)
                first_model, params, first_seconds = service.train(first_set, None, extra)
                first_error = service.test_error(first_model, test, args.eval_samples)
                print(f"seed {seed}: cold start, {len(start)} labels: test error {first_error:.4f}, {first_seconds:.0f} CPU s",
                      flush=True)
                for strategy in args.strategies:
                    dataset = service.upload(images, f"pool-{seed}-{strategy}")
                    service.label(dataset, start, truth)
                    model, labelled = first_model, len(start)
                    run_ = dict(seed=seed, strategy=strategy, labels=sizes[strategy], error=[first_error],
                                cold_error=[first_error],
                                seconds=[first_seconds], cold_seconds=[first_seconds], epochs=[params["epochs"]],
                                from_weights=[False])
                    for round_, size in enumerate(sizes[strategy][1:], start=1):
                        chosen = service.suggest(dataset, model, size - labelled, strategy, seed * 100 + round_)
                        service.label(dataset, chosen, truth)
                        labelled = size
                        model, warm_params, seconds = service.train(dataset, model, warm_extra)
                        run_["error"].append(service.test_error(model, test, args.eval_samples))
                        run_["seconds"].append(seconds)
                        run_["epochs"].append(warm_params["epochs"])
                        run_["from_weights"].append(warm_params["init_weights"])
                        if args.cold_reference:
                            cold, _params, cold_seconds = service.train(dataset, None, extra)
                            run_["cold_error"].append(service.test_error(cold, test, args.eval_samples))
                            run_["cold_seconds"].append(cold_seconds)
                        print(f"seed {seed} {strategy:>16} {size:4d} labels: warm {run_['error'][-1]:.4f} "
                              f"({seconds:.0f} CPU s, {warm_params['epochs']} epochs"
                              f"{' from the weights' if warm_params['init_weights'] else ', fresh weights'})"
                              + (f", cold {run_['cold_error'][-1]:.4f} ({run_['cold_seconds'][-1]:.0f} CPU s)"
                                 if args.cold_reference else "")
                              + f"  [{time.perf_counter() - started:.0f} s]", flush=True)
                    results["runs"].append(run_)
                    if args.json:  # after each run, so that a stopped benchmark keeps what it measured
                        Path(args.json).write_text(json.dumps(results, indent=1))
        finally:
            service.stop()
    results["total_seconds"] = time.perf_counter() - started
    return results


def labels_of(text: str, strategies: list[str]) -> dict[str, list[int]]:
    """Labels after each round per strategy: "10,20,50" for all, or "random=10,100;cover=10,50"."""
    if "=" not in text:
        return {strategy: [int(n) for n in text.split(",")] for strategy in strategies}
    sizes = {name: [int(n) for n in sizes.split(",")] for name, sizes in (part.split("=") for part in text.split(";"))}
    if set(sizes) != set(strategies) or len({s[0] for s in sizes.values()}) != 1:
        raise SystemExit("--labels names every strategy once, each starting from the same number of labels")
    return sizes


def by_strategy(results: dict, key: str) -> dict[str, np.ndarray]:
    strategies = dict.fromkeys(run["strategy"] for run in results["runs"])
    return {s: np.array([run[key] for run in results["runs"] if run["strategy"] == s], dtype=float) for s in strategies}


def table(results: dict) -> str:
    labels = results["labels"]
    lines = ["| strategy | | " + " | ".join(str(n) for n in labels) + " |", "|---|---|" + "---:|" * len(labels)]
    sizes = {run["strategy"]: run.get("labels", labels) for run in results["runs"]}
    warm, seconds = by_strategy(results, "error"), by_strategy(results, "seconds")
    cold, cold_seconds = by_strategy(results, "cold_error"), by_strategy(results, "cold_seconds")
    for strategy in warm:
        rows = [("loop", warm[strategy] * 100, "{:.1f} ± {:.1f}")]
        if cold[strategy].shape == warm[strategy].shape:
            rows += [("cold, same labels", cold[strategy] * 100, "{:.1f} ± {:.1f}"),
                     ("loop − cold (points)", (warm[strategy] - cold[strategy]) * 100, "{:+.1f} ± {:.1f}")]
        rows.append(("loop CPU s", seconds[strategy], "{:.0f} ± {:.0f}"))
        if cold_seconds[strategy].shape == seconds[strategy].shape:
            rows.append(("cold CPU s", cold_seconds[strategy], "{:.0f} ± {:.0f}"))
        for what, values, form in rows:
            cell = {n: form.format(m, s) for n, m, s in zip(sizes[strategy], values.mean(0), values.std(0))}
            cells = [cell.get(n, "") for n in labels]
            lines.append(f"| {strategy} | {what} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    warm, cold = by_strategy(results, "error"), by_strategy(results, "cold_error")
    for strategy, errors in warm.items():
        errors = errors * 100
        labels = next(run.get("labels", results["labels"]) for run in results["runs"] if run["strategy"] == strategy)
        line = axes.errorbar(labels, errors.mean(0), yerr=errors.std(0), label=f"{strategy} (loop)",
                             capsize=3, linestyle="--" if strategy.startswith("random") else "-", marker="o", markersize=3)
        if cold[strategy].shape == errors.shape:
            axes.plot(labels, cold[strategy].mean(0) * 100, linestyle=":", color=line[0].get_color(),
                      label=f"{strategy} (cold, same labels)")
    axes.set_xlabel("labels")
    axes.set_ylabel("MNIST test error (%)")
    axes.set_yscale("log")
    axes.set_title(f"The loop on a {results['pool']:,}-image pool, mean ± sd over "
                   f"{len(next(iter(warm.values())))} seed(s)", fontsize=10)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", default="../shared/data/mnist")
    parser.add_argument("--pool", type=int, default=5000, help="training images in the pool (a fixed random subset)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--labels", default="10,20,30,50,100",
                        help="labels after each round (the first: 1 per class), or per strategy: 'random=10,100;cover=10,50'")
    parser.add_argument("--strategies", default="random,margin+diverse")
    parser.add_argument("--cold-reference", action=argparse.BooleanOptionalAction, default=True,
                        help="train a cold model on each round's labels too")
    parser.add_argument("--warm-epochs", type=int, default=0,
                        help="epochs of a warm retrain, sent in the request; 0: the service's warm-start rule")
    parser.add_argument("--job", default="{}", help="JSON fields added to every POST /train body")
    parser.add_argument("--eval-samples", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="docs/active_learning.png")
    parser.add_argument("--json", default="docs/active_learning.json")
    parser.add_argument("--replot", action="store_true", help="only the table and plot of the runs in --json")
    args = parser.parse_args()
    args.strategies = args.strategies.split(",")
    if args.replot:
        results = json.loads(Path(args.json).read_text())
    else:
        torch.set_num_threads(args.threads)
        results = run(args)
        results["args"] = {k: v for k, v in vars(args).items()}
        Path(args.json).write_text(json.dumps(results, indent=1))
    plot(results, Path(args.out))
    print(f"CPU: {results['cpu']}")
    print(table(results))
    if "total_seconds" in results:
        print(f"total {results['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()

"""Every script in bench/ runs here, as a user runs it (`python bench/X.py …` from the repository
root, in a subprocess), at the smallest sizes that still take it through its whole path: a change
that breaks a benchmark fails the suite. Figures are not judged, only that each script ends well
and writes what it promises (its JSON keys, its files).

A new script in bench/ fails `test_every_bench_script_has_a_smoke_run` until it gets a run in SMOKE
(or, if it is only imported by others, an entry in LIBRARIES). The scripts that score samples load
the judge from bench/.cache; the session's `judge` fixture trains it there first when it is missing.
"""

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from process_harness import free_port

pytestmark = pytest.mark.timeout(900)

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"
RUN_TIMEOUT_SECONDS = 600  # seconds of CPU each on an idle core; minutes on a loaded machine

# Imported by the scripts, never run on their own; each is exercised by the runs named.
LIBRARIES = {
    "bench/api_process.py": "the API process of the serving, footprint and upload runs (serving, api_footprint, upload_time)",
    "bench/bare_app.py": "the app bench/serving.py starts under uvicorn (serving)",
    "bench/load.py": "the load generators of bench/serving.py (serving)",
    "bench/notebook_reference.py": "the reference loop bench/throughput.py measures against (throughput)",
}


@dataclass(frozen=True)
class Run:
    stdout: str
    out: Path  # the directory this run wrote its files into

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def json_file(self, name: str) -> dict:
        return json.loads((self.out / name).read_text())


class Bench:
    """Runs bench scripts, each distinct command once per module (a plot reuses its source's run)."""

    def __init__(self, directory: Path, mnist_dir: Path):
        self.directory, self.mnist_dir = directory, mnist_dir
        self._runs: dict[tuple[str, ...], Run] = {}

    def run(self, script: str, *args: str) -> Run:
        """`python <script> <args>` in the repository (scripts are named by their path, bench/<name>.py);
        "{out}" in an argument is the run's directory, "{mnist}" MNIST's."""
        key = (script, *args)
        if key not in self._runs:
            out = self.directory / f"{Path(script).stem}-{len(self._runs)}"
            out.mkdir()
            command = [sys.executable, script,
                       *(arg.format(out=out, mnist=self.mnist_dir) for arg in args)]
            env = {key: value for key, value in os.environ.items() if not key.startswith("ADGM_")}
            done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT_SECONDS)
            assert done.returncode == 0, (f"{' '.join(command[1:])} exited with {done.returncode}:\n"
                                          f"{done.stderr[-6000:]}")
            (out / "stdout").write_text(done.stdout)
            self._runs[key] = Run(done.stdout, out)
        return self._runs[key]


@pytest.fixture(scope="module")
def bench(tmp_path_factory, mnist_dir, judge) -> Bench:
    return Bench(tmp_path_factory.mktemp("bench"), mnist_dir)


def has(row: dict, *keys: str) -> bool:
    missing = set(keys) - set(row)
    assert not missing, f"missing {sorted(missing)} in {sorted(row)}"
    return True


def is_png(path: Path) -> bool:
    return path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 1000


def has_cpu(row: dict) -> bool:
    return has(row["cpu"], "name", "logical_cpus", "vector_flags", "native_bf16")


# --- one run per script, the smallest that goes through all of it --------------------------------

ADGM_VS_SDGM = ("bench/adgm_vs_sdgm.py", "--preset", "quick", "--budget", "1", "--seeds", "0", "--threads", "1",
                "--set", "hidden=[64]", "--mnist-dir", "{mnist}")
LONG_RUN = ("bench/long_run.py", "--set", "epochs=1", "--set", "hidden=[16]", "--set", "z_dim=2", "--set", "a_dim=2",
            "--set", "batch_size=1000", "--set", "eval_samples=1", "--threads", "1", "--mnist-dir", "{mnist}",
            "--checkpoint-dir", "{out}/checkpoints", "--out", "{out}/long_run.jsonl")


def ablation(bench: Bench) -> None:
    run = bench.run("bench/ablation.py", "--preset", "quick", "--budget", "1", "--seeds", "0", "--only", "recipe",
                    "--threads", "1", "--mnist-dir", "{mnist}", "--out", "{out}/ablation.json")
    [line] = run.json_lines()
    assert line["variant"] == "recipe" and has(line, "epochs", "test_accuracy", "fidelity", "train_cpu_seconds")
    assert "| recipe | 1 |" in run.stdout
    [row] = run.json_file("ablation.json")["rows"]
    assert has(row, "variant", "overrides", "test_error", "fidelity", "fidelity_min", "runs")


def active_learning(bench: Bench) -> None:
    run = bench.run("bench/active_learning.py", "--mnist-dir", "{mnist}", "--pool", "200", "--seeds", "1", "--labels", "10,20",
                    "--strategies", "random,cover", "--job", '{{"epochs": 1, "hidden": [32], "z_dim": 4, "a_dim": 4}}',
                    "--eval-samples", "1", "--out", "{out}/loop.png", "--json", "{out}/loop.json")
    results = run.json_file("loop.json")
    assert results["labels"] == [10, 20] and has(results, "runs", "cpu", "total_seconds", "args")
    assert [(r["strategy"], len(r["error"]), len(r["cold_error"]), r["from_weights"]) for r in results["runs"]] == [
        ("random", 2, 2, [False, True]), ("cover", 2, 2, [False, True])]  # epochs given: from the weights
    assert is_png(run.out / "loop.png") and "| cover | loop − cold (points) |" in run.stdout


def adgm_diagnosis(bench: Bench) -> None:
    run = bench.run("bench/adgm_diagnosis.py", "--preset", "quick", "--budget", "1", "--seeds", "0", "--threads", "1",
                    "--set", "hidden=[64]", "--mnist-dir", "{mnist}", "--out", "{out}/diagnosis.json")
    variants = ["SDGM", "ADGM", "ADGM, deterministic q(a|x)"]
    assert [line["variant"] for line in run.json_lines()] == variants
    rows = run.json_file("diagnosis.json")["rows"]
    assert [row["variant"] for row in rows] == variants
    assert has(rows[0], "test_accuracy", "fidelity", "accuracy_mean_a", "variance_of_a", "mutual_information_nats")


def adgm_vs_sdgm(bench: Bench) -> None:
    lines = bench.run(*ADGM_VS_SDGM).json_lines()
    assert [line["model"] for line in lines] == ["ADGM", "SDGM"]
    for line in lines:
        assert has(line, "test_error", "fidelity", "kl_a_total", "active_dims", "q_y_change_when_a_is_swapped")
        assert len(line["kl_a_per_dim"]) == line["a_dim"]


def plot_kl_a(bench: Bench) -> None:
    source = bench.run(*ADGM_VS_SDGM)
    run = bench.run("bench/plot_kl_a.py", str(source.out / "stdout"), "{out}/kl_a.png")
    assert is_png(run.out / "kl_a.png")


def classifier_draws(bench: Bench) -> None:
    run = bench.run("bench/classifier_draws.py", "--budget", "1", "--draws", "1", "2", "--mc", "1", "--alpha-factors", "1",
                    "--seeds", "0", "--threads", "1", "--mnist-dir", "{mnist}", "--out", "{out}/draws.json")
    assert [line["S_c"] for line in run.json_lines()] == [1, 2]
    rows = run.json_file("draws.json")["rows"]
    assert [row["S_c"] for row in rows] == [1, 2] and has(rows[0], "test_accuracy", "fidelity", "alpha", "runs")


def first_labels(bench: Bench) -> None:
    run = bench.run("bench/first_labels.py", "--tiny", "--seeds", "0", "--out", "{out}/first_labels.json")
    rows = run.json_file("first_labels.json")["rows"]
    assert [row["method"] for row in rows] == ["chosen", "uniform", "per_class"]
    assert has(rows[0], "indices", "classes_covered", "test_accuracy", "baseline_test_accuracy")
    assert "| per_class | 10.0 |" in run.stdout


def the_judge(bench: Bench) -> None:
    [line] = bench.run("bench/judge.py", "--mnist-dir", "{mnist}").json_lines()
    assert line["judge_test_accuracy"] > 0.97 and has(line, "seconds", "threads")


def long_run(bench: Bench) -> None:
    run = bench.run(*LONG_RUN)
    header, epoch, final = [json.loads(line) for line in (run.out / "long_run.jsonl").read_text().splitlines()]
    assert has(header, "preset", "params", "started") and header["params"]["epochs"] == 1
    assert epoch["epoch"] == 1 and has(epoch, "train_seconds", "train_cpu_seconds", "test_error", "elbo")
    assert final["final"] is True and has(final, "test_error", "fidelity", "fidelity_per_label", "self_consistency")
    assert (run.out / "checkpoints").is_dir()


def plot_long_run(bench: Bench) -> None:
    source = bench.run(*LONG_RUN)
    run = bench.run("bench/plot_long_run.py", str(source.out / "long_run.jsonl"), "--png", "{out}/long_run.png")
    [summary] = run.json_lines()
    assert has(summary, "first_reached", "best_test_error", "final") and summary["epochs"] == "1 of 1"
    assert is_png(run.out / "long_run.png")


def mnist100(bench: Bench) -> None:
    run = bench.run("bench/mnist100.py", "--data", "digits5k", "--preset", "notebook", "--seeds", "0", "--epochs", "1",
                    "--eval-every", "1", "--eval-samples", "1", "--time-budget", "600", "--out", "{out}/mnist100.json")
    summary = run.json_file("mnist100.json")
    assert has(summary, "mean_test_error", "std_test_error", "device", "torch")
    [seed] = summary["runs"]
    assert seed["epochs"] == 1 and [point["epoch"] for point in seed["curve"]] == [1]
    assert has(seed, "final_test_error", "reached", "seconds_per_epoch")


def recipe(bench: Bench) -> None:
    run = bench.run("bench/recipe.py", "--preset", "quick", "--set", "hidden=[64]", "--time-budget", "1", "--curve",
                    "--seeds", "0", "--threads", "1", "--mnist-dir", "{mnist}", "--out", "{out}/recipe.json")
    seed, summary = run.json_lines()
    assert has(seed, "epochs", "test_accuracy", "fidelity", "self_consistency", "train_cpu_seconds")
    assert len(seed["curve"]) == seed["epochs"]
    assert has(summary, "test_accuracy", "fidelity", "train_seconds") and has_cpu(summary)
    assert run.json_file("recipe.json")["params"]["hidden"] == [64]


def api_footprint(bench: Bench) -> None:
    run = bench.run("bench/api_footprint.py", "--models", "1", "--launches", "1", "--code", "one=.", "--code", "two=.",
                    "--port", str(free_port()), "--out", "{out}/api_footprint.json")
    results = run.json_file("api_footprint.json")
    assert has_cpu(results["machine"]) and results["models"] == 1
    for code in ("one", "two"):
        assert results[code]["healthy_s"] > 0 and results[code]["healthy_cpu_s"] > 0
        assert has(results[code]["rss_mib"], "healthy", "1_models", "after_onnx_export", "peak")
        assert results[code]["torch_loaded"]["after_onnx_export"] is True
    assert results["two"]["answers_vs_one"]["probabilities_max_abs"] == 0.0  # the same code, the same answers


def serving(bench: Bench) -> None:
    run = bench.run("bench/serving.py", "--seconds", "1", "--rounds", "2", "--generator", "httpx", "--port", str(free_port()),
                    "--out", "{out}/serving.json")
    results = run.json_file("serving.json")
    assert has_cpu(results["machine"]) and results["machine"]["code"] == str(REPO_ROOT)
    floor = results["floor"]
    for route in ("classify", "bare_upload", "sample", "bare_png"):
        assert floor[route]["requests"] > 0 and floor[route]["rounds"] == 2
        assert has(floor[route], "requests_per_second", "p50_ms", "p99_ms", "server_cpu_ms_per_request")
    assert has(floor, "classify_vs_floor_throughput", "classify_vs_floor_p99", "sample_vs_floor_cpu_per_request")
    assert has(results["mixed"], "c32", "c128", "server_peak_rss_mib")
    training = results["training"]
    assert training["training"]["job_status_during"] == "running"
    assert has(training, "c1_p50_ms_training_over_idle", "c32_p99_ms_training_over_idle")


def small_datasets(bench: Bench) -> None:
    run = bench.run("bench/small_datasets.py", "--tiny", "--seeds", "0", "--mnist-dir", "{mnist}", "--out", "{out}/small.json")
    assert run.stdout.startswith("CPU: ")
    results = run.json_file("small.json")
    assert has_cpu(results) and set(results["summary"]) == {"mnist14", "mnist8", "mnist3c", "digits8"}
    for row in results["rows"]:
        assert has(row["before"], "accuracy", "cpu_seconds", "baseline") and has(row["adapted"], "accuracy", "baseline")
        assert 0 <= row["label_spreading"] <= 1
    assert {tuple(row["image_shape"]) for row in results["rows"]} == {(14, 14), (8, 8), (28, 28)}


def suggestions(bench: Bench) -> None:
    run = bench.run("bench/suggestions.py", "--mnist-dir", "{mnist}", "--pool", "300", "--repeats", "1")
    assert run.stdout.startswith("300 images")
    rows = re.findall(r"^\| (\w+) \| (True|False) \| \d+\.\d\d \|$", run.stdout, re.MULTILINE)
    from adgm_core.acquisition import STRATEGIES  # each, with and without the diversity cover

    assert sorted(rows) == sorted((s, d) for s in STRATEGIES for d in ("False", "True")), run.stdout


def upload_time(bench: Bench) -> None:
    run = bench.run("bench/upload_time.py", "--images", "300", "--background-images", "100", "--port", str(free_port()),
                    "--mnist-dir", "{mnist}")  # more than 100 images: decoded in the background, polled
    assert re.search(r"^answer: 202 after [\d.]+ s \([\d.]+ s of API CPU\); succeeded after [\d.]+ s \([\d.]+ s of API CPU\)$",
                     run.stdout, re.MULTILINE), run.stdout
    assert "data set: 300 images, 100 labelled" in run.stdout and "API RSS:" in run.stdout


def throughput(bench: Bench) -> None:
    for sizes in (["--preset", "quick"], ["--sizes", "notebook"]):
        run = bench.run("bench/throughput.py", *sizes, "--steps", "2", "--rounds", "1", "--mnist-dir", "{mnist}")
        summary = run.json_lines()[-1]
        assert has(summary, "torch", "numpy") and has_cpu(summary)
        [row] = summary["results"]
        assert has(row, "reference_ex_per_s", "trainer_ex_per_s", "trainer_bf16_ex_per_s", "ratio", "ratio_bf16")


SMOKE: dict[str, Callable[[Bench], None]] = {
    "bench/ablation.py": ablation, "bench/api_footprint.py": api_footprint, "bench/active_learning.py": active_learning,
    "bench/adgm_diagnosis.py": adgm_diagnosis,
    "bench/adgm_vs_sdgm.py": adgm_vs_sdgm, "bench/classifier_draws.py": classifier_draws, "bench/first_labels.py": first_labels,
    "bench/judge.py": the_judge, "bench/long_run.py": long_run, "bench/mnist100.py": mnist100, "bench/plot_kl_a.py": plot_kl_a,
    "bench/plot_long_run.py": plot_long_run, "bench/recipe.py": recipe, "bench/serving.py": serving, "bench/small_datasets.py": small_datasets,
    "bench/suggestions.py": suggestions,
    "bench/throughput.py": throughput, "bench/upload_time.py": upload_time,
}


def test_every_bench_script_has_a_smoke_run():
    scripts = {str(path.relative_to(REPO_ROOT)) for path in BENCH.glob("*.py")}
    assert scripts - set(SMOKE) - set(LIBRARIES) == set(), "add a smoke run to SMOKE for each new bench script"
    assert set(SMOKE) | set(LIBRARIES) <= scripts, "SMOKE or LIBRARIES names a script that is gone"
    assert not set(SMOKE) & set(LIBRARIES)


@pytest.mark.parametrize("script", sorted(SMOKE))
def test_bench_script_runs(script, bench):
    SMOKE[script](bench)

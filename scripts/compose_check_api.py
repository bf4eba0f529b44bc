"""The HTTP side of scripts/compose-check.sh: drives the API published by `docker compose` from the
host, with the standard library only (the host needs nothing but python3).

    python3 scripts/compose_check_api.py --api http://127.0.0.1:PORT train --epochs 4
    python3 scripts/compose_check_api.py --api … follow JOB_ID --epochs 4
    python3 scripts/compose_check_api.py --api … wait-epoch JOB_ID 6 --snapshot FILE
    python3 scripts/compose_check_api.py --api … check-resumed JOB_ID --snapshot FILE --epochs 12 --checkpoint-every 5
    python3 scripts/compose_check_api.py --api … models MODEL_ID …
    python3 scripts/compose_check_api.py --api … sample --label 3 [--model ID] --out FILE

Each command prints what it saw and exits 1 with a sentence naming what is wrong.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


class CheckFailed(Exception):
    pass


def request(api: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"content-type": "application/json"} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(api + path, data=data, headers=headers), timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def get_json(api: str, path: str) -> dict:
    status, _headers, content = request(api, path)
    if status != 200:
        raise CheckFailed(f"GET {path} answered {status}: {content[:300]!r}")
    return json.loads(content)


def train(api: str, epochs: int, name: str) -> None:
    status, _headers, content = request(api, "/train", {"dataset": "digits5k", "epochs": epochs, "name": name})
    if status != 202:
        raise CheckFailed(f"POST /train answered {status}: {content[:300]!r}")
    job = json.loads(content)
    print(f"job {job['id']} queued: {name}, digits5k, {job['params']['epochs']} epochs", file=sys.stderr)
    print(job["id"])


def follow(api: str, job_id: str, epochs: int, timeout: float) -> None:
    """Reads the job's event stream to its `end` event: every epoch 1..epochs once, then success."""
    seen, final, event, started = [], None, None, time.monotonic()
    with urllib.request.urlopen(f"{api}/jobs/{job_id}/events", timeout=timeout) as stream:
        for raw in stream:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "progress":
                progress = json.loads(line.split(":", 1)[1])
                again = " (trained again: a report of the resumed run)" if progress["epoch"] in seen else ""
                seen.append(progress["epoch"])
                accuracy = progress.get("test_accuracy")
                print(f"  {time.monotonic() - started:5.1f} s  epoch {progress['epoch']}/{progress['epochs']}: "
                      f"elbo {progress['elbo']:.1f}, test accuracy {'-' if accuracy is None else f'{accuracy:.3f}'}, "
                      f"{progress['examples_per_second']:.0f} examples/s{again}", flush=True)
            elif line.startswith("data:") and event == "end":
                final = json.loads(line.split(":", 1)[1])
                break
    if final is None:
        raise CheckFailed(f"the event stream of job {job_id} closed without an end event")
    if final["status"] != "succeeded" or not final["model_id"]:
        raise CheckFailed(f"job {job_id} ended {final['status']} (error: {final['error']})")
    if sorted(set(seen)) != list(range(1, epochs + 1)):
        raise CheckFailed(f"job {job_id} reported epochs {seen}, not 1..{epochs}")
    print(f"  {time.monotonic() - started:5.1f} s  end: {final['status']}, model {final['model_id']}")


def wait_epoch(api: str, job_id: str, epoch: int, snapshot: Path, timeout: float) -> None:
    """Waits until the job has reported `epoch`, then saves its history (to compare after a kill)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_json(api, f"/jobs/{job_id}")
        if job["status"] not in ("queued", "running"):
            raise CheckFailed(f"job {job_id} ended {job['status']} before epoch {epoch}")
        if job["history"] and job["history"][-1]["epoch"] >= epoch:
            snapshot.write_text(json.dumps(job["history"]))
            print(f"job {job_id} has reported epoch {job['history'][-1]['epoch']}")
            return
        time.sleep(0.3)
    raise CheckFailed(f"job {job_id} did not reach epoch {epoch} in {timeout:.0f} s")


def check_resumed(api: str, job_id: str, snapshot: Path, epochs: int, checkpoint_every: int) -> None:
    """After a kill: the job succeeded with epochs 1..epochs once each, and the epochs up to the last
    checkpoint before the kill were kept, not trained again (their reports are the same rows)."""
    before = json.loads(snapshot.read_text())
    job = get_json(api, f"/jobs/{job_id}")
    history = job["history"]
    if job["status"] != "succeeded" or not job["model_id"]:
        raise CheckFailed(f"job {job_id} is {job['status']} (error: {job['error']})")
    if [row["epoch"] for row in history] != list(range(1, epochs + 1)):
        raise CheckFailed(f"job {job_id}'s history has epochs {[row['epoch'] for row in history]}, not 1..{epochs}")
    checkpoint = before[-1]["epoch"] // checkpoint_every * checkpoint_every
    kept = [row for row in before if row["epoch"] <= checkpoint]
    if history[:checkpoint] != kept:
        raise CheckFailed(f"job {job_id} trained epochs 1..{checkpoint} again: it did not resume from its checkpoint")
    redone = [row["epoch"] for row in before if row["epoch"] > checkpoint]
    print(f"job {job_id}: killed after epoch {before[-1]['epoch']}, resumed from the checkpoint of epoch "
          f"{checkpoint} (epochs {redone} trained again), succeeded with epochs 1..{epochs}, model {job['model_id']}")


def models(api: str, expected: list[str]) -> None:
    listed = get_json(api, "/models")["models"]
    ids = [model["id"] for model in listed]
    missing = [model_id for model_id in expected if model_id not in ids]
    if missing or len(ids) != len(expected):
        raise CheckFailed(f"/models lists {ids}; expected exactly {expected}")
    print(f"/models lists the {len(ids)} models: " + ", ".join(f"{m['id']} ({m['name']})" for m in listed))


def sample(api: str, label: int, model: str | None, out: Path) -> None:
    path = f"/sample?label={label}" + (f"&model={model}" if model else "")
    status, headers, content = request(api, path, timeout=60)
    if status != 200:
        raise CheckFailed(f"GET {path} answered {status}: {content[:300]!r}")
    headers = {key.lower(): value for key, value in headers.items()}
    if headers.get("content-type") != "image/png" or not content.startswith(b"\x89PNG\r\n\x1a\n"):
        raise CheckFailed(f"GET {path} is not a PNG ({headers.get('content-type')})")
    if model and headers.get("x-model-id") != model:
        raise CheckFailed(f"GET {path} was served by model {headers.get('x-model-id')}")
    out.write_bytes(content)
    print(f"GET {path}: {len(content)} bytes of PNG from model {headers.get('x-model-id')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True, help="http://127.0.0.1:PORT")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("train")
    command.add_argument("--epochs", type=int, required=True)
    command.add_argument("--name", default="compose-check")
    command = commands.add_parser("follow")
    command.add_argument("job_id")
    command.add_argument("--epochs", type=int, required=True)
    command.add_argument("--timeout", type=float, default=600)
    command = commands.add_parser("wait-epoch")
    command.add_argument("job_id")
    command.add_argument("epoch", type=int)
    command.add_argument("--snapshot", type=Path, required=True)
    command.add_argument("--timeout", type=float, default=300)
    command = commands.add_parser("check-resumed")
    command.add_argument("job_id")
    command.add_argument("--snapshot", type=Path, required=True)
    command.add_argument("--epochs", type=int, required=True)
    command.add_argument("--checkpoint-every", type=int, required=True)
    command = commands.add_parser("models")
    command.add_argument("expected", nargs="+")
    command = commands.add_parser("sample")
    command.add_argument("--label", type=int, required=True)
    command.add_argument("--model")
    command.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    api = args.api.rstrip("/")
    try:
        if args.command == "train":
            train(api, args.epochs, args.name)
        elif args.command == "follow":
            follow(api, args.job_id, args.epochs, args.timeout)
        elif args.command == "wait-epoch":
            wait_epoch(api, args.job_id, args.epoch, args.snapshot, args.timeout)
        elif args.command == "check-resumed":
            check_resumed(api, args.job_id, args.snapshot, args.epochs, args.checkpoint_every)
        elif args.command == "models":
            models(api, args.expected)
        else:
            sample(api, args.label, args.model, args.out)
    except (CheckFailed, OSError) as error:
        sys.exit(f"compose_check_api {args.command}: {error}")


if __name__ == "__main__":
    main()

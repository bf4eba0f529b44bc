"""How long `POST /datasets` takes on a 60,000-image ImageFolder zip, and the API's peak memory.

Builds the zip in a temporary directory from the MNIST IDX files (10 labelled digits per class in
`0/`..`9/`, the rest in `unlabelled/`, one PNG each, plus a README.md at the root), starts the API
under uvicorn (embedded mode without a training worker, state in the temporary directory),
uploads the zip and, when it is answered 202, polls the upload until it ends. Prints the wall
time to the answer and until the data set is stored, the CPU time the API process spent on each
(what an idle core would take, whatever else runs on the machine), and its peak RSS (VmHWM)
before and after.

    taskset -c 1 .venv/bin/python bench/upload_time.py --mnist-dir ../shared/data/mnist
    taskset -c 1 .venv/bin/python bench/upload_time.py --images 300 --background-images 100   # a smoke test
"""

import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from adgm_core.data import load_mnist  # noqa: E402
from bench.api_process import ApiProcess  # noqa: E402

LABELLED_PER_CLASS = 10


def build_zip(mnist_dir: str, n_images: int, path: Path) -> None:
    train = load_mnist(mnist_dir)[0]
    labelled = {int(i) for k in range(10) for i in np.flatnonzero(train.labels == k)[:LABELLED_PER_CLASS]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.md", "MNIST training digits as PNG files.\n")
        for i in range(n_images):
            buffer = io.BytesIO()
            Image.fromarray(train.images[i]).save(buffer, "PNG")
            folder = str(train.labels[i]) if i in labelled else "unlabelled"
            archive.writestr(f"{folder}/{i}.png", buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mnist-dir", default=str(REPO_ROOT / ".." / "shared" / "data" / "mnist"))
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--zip", type=Path, help="build the zip here, or reuse it when it exists (never in the repo)")
    parser.add_argument("--background-images", type=int,
                        help="ADGM_UPLOAD_BACKGROUND_IMAGES of the API (default: the server's default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="adgm-upload-bench-") as directory:
        directory = Path(directory)
        archive = args.zip or directory / "mnist.zip"
        started = time.perf_counter()
        if not archive.exists():
            build_zip(args.mnist_dir, args.images, archive)
        print(f"zip: {archive.stat().st_size / 2**20:.1f} MiB, ready in {time.perf_counter() - started:.1f} s")
        env = {"ADGM_MAX_UPLOAD_BYTES": str(256 << 20)}
        if args.background_images is not None:
            env["ADGM_UPLOAD_BACKGROUND_IMAGES"] = str(args.background_images)
        api = ApiProcess(directory, args.port, ["app.main:app", "--log-level", "warning"], env=env, poll_seconds=0.1)
        try:
            rss_before = api.rss_mib()
            with open(archive, "rb") as content, httpx.Client(base_url=api.url, timeout=600) as client:
                started, cpu_started = time.perf_counter(), api.cpu_seconds()
                response = client.post("/datasets", files={"file": ("mnist.zip", content, "application/zip")})
                answered, status = time.perf_counter() - started, response.status_code
                cpu_answered = api.cpu_seconds() - cpu_started
                body = response.json()
                while status == 202 and body["status"] in ("queued", "running"):
                    time.sleep(0.2)
                    body = client.get(body["url"]).json()
                ready, cpu_ready = time.perf_counter() - started, api.cpu_seconds() - cpu_started
            peak = api.peak_rss_mib()
        finally:
            api.stop()
        dataset = body.get("dataset", body) if status == 202 else body
        print(f"answer: {status} after {answered:.1f} s ({cpu_answered:.1f} s of API CPU); "
              f"{body.get('status', 'stored')} after {ready:.1f} s ({cpu_ready:.1f} s of API CPU)")
        print(f"data set: {dataset['n_images']} images, {dataset['n_labelled']} labelled, skipped {dataset['skipped']}"
              if dataset else f"body: {str(body)[:500]}")
        print(f"API RSS: {rss_before:.0f} MiB before the upload, peak {peak:.0f} MiB")


if __name__ == "__main__":
    main()

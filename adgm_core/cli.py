"""The `adgm` command line: train, evaluate, sample and classify without the service."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from adgm_core.checkpoint import CheckpointError, save_model
from adgm_core.cpu import check_bf16
from adgm_core.data import DataError, ImageSet, load_builtin, load_npz, semi_supervised_split
from adgm_core.data.sources import BUILTIN_NAMES
from adgm_core.evaluation import error_rate
from adgm_core.images import ImageError, decode_upload, png_grid, to_model_input
from adgm_core.predictor import Predictor
from adgm_core.presets import DEFAULT_PRESET, PARAMETERS, PRESETS, DataProfile, configs_for, resolve

app = typer.Typer(help="Train and use the Auxiliary Deep Generative Model.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
err = Console(stderr=True)
DEFAULT_MNIST_DIR = Path("../shared/data/mnist")


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=2)


def load_data(data: str, mnist_dir: Path, download_root: Optional[Path]) -> tuple[ImageSet, Optional[ImageSet]]:
    if data in BUILTIN_NAMES:
        return load_builtin(data, mnist_dir=mnist_dir, download_root=download_root)
    path = Path(data)
    if not path.is_file():
        raise DataError(f"{data!r} is neither a built-in data set ({', '.join(BUILTIN_NAMES)}) nor an .npz file")
    return load_npz(path)


def load_predictor(model_dir: Path) -> Predictor:
    try:
        return Predictor.from_directory(model_dir)
    except CheckpointError as error:
        raise fail(f"{error}. Train a model with `adgm train --out DIR` first.") from None


DataOption = Annotated[str, typer.Option(help=f"{' or '.join(BUILTIN_NAMES)}, or a path to an .npz file")]
MnistDirOption = Annotated[Path, typer.Option(help="directory holding MNIST's four IDX files")]
DownloadOption = Annotated[Optional[Path], typer.Option(help="where to download MNIST when it is not found (needs a network)")]


@app.command()
def train(
    out: Annotated[Path, typer.Option(help="directory to write the trained model into (must not exist)")],
    preset: Annotated[str, typer.Option(help=f"named recipe: {', '.join(PRESETS)}; the options below override it")] = DEFAULT_PRESET,
    data: Annotated[Optional[str], typer.Option(help=f"{' or '.join(BUILTIN_NAMES)}, or a path to an .npz file (default: the preset's)")] = None,
    mnist_dir: MnistDirOption = DEFAULT_MNIST_DIR,
    download_root: DownloadOption = None,
    labels_per_class: Optional[int] = None,
    epochs: Optional[int] = None,
    hidden: Annotated[Optional[str], typer.Option(help="hidden layer widths, comma-separated")] = None,
    z_dim: Optional[int] = None,
    a_dim: Optional[int] = None,
    skip: Annotated[Optional[bool], typer.Option("--skip/--no-skip", help="SDGM or the ADGM without skip connections")] = None,
    batch_norm: Annotated[Optional[bool], typer.Option("--batch-norm/--no-batch-norm")] = None,
    deterministic_a: Annotated[Optional[bool], typer.Option(
        "--deterministic-a/--stochastic-a", help="q(a|x) a point mass at its mean (the authors' ablation)")] = None,
    batch_size: Optional[int] = None,
    labelled_batch_size: Optional[int] = None,
    mc_samples: Optional[int] = None,
    classifier_samples: Annotated[Optional[int], typer.Option(help="draws of a for the classification term")] = None,
    mc_average_softmax: Annotated[Optional[bool], typer.Option("--mc-average-softmax/--no-mc-average-softmax")] = None,
    learning_rate: Optional[float] = None,
    lr_schedule: Annotated[Optional[str], typer.Option(help="step or cosine")] = None,
    lr_warmup_steps: Optional[int] = None,
    lr_decay: Optional[float] = None,
    lr_decay_every: Annotated[Optional[int], typer.Option(help="epochs between step decays (authors: 200)")] = None,
    grad_clip: Optional[float] = None,
    grad_clip_value: Optional[float] = None,
    weight_prior: Annotated[Optional[bool], typer.Option("--weight-prior/--no-weight-prior")] = None,
    ema_decay: Optional[float] = None,
    alpha: Optional[float] = None,
    warmup_steps: Annotated[Optional[int], typer.Option(help="KL warm-up steps")] = None,
    eval_samples: Optional[int] = None,
    seed: Optional[int] = None,
    checkpoint_dir: Annotated[Optional[Path], typer.Option(help="resumable training state (resumes if present)")] = None,
    checkpoint_every: int = 5,
    device: str = "auto",
    compile: bool = False,
    bf16: Annotated[Optional[bool], typer.Option("--bf16/--no-bf16", help="bf16 autocast for the networks (GPU, or a CPU with native bf16)")] = None,
) -> None:
    """Train a model on a few labels and all images as unlabelled data, then save it.

    Every training parameter comes from `--preset`; an option given explicitly overrides it."""
    from adgm_core.trainer import Trainer

    given = {name: value for name, value in locals().items() if name in PARAMETERS}
    if hidden is not None:
        given["hidden"] = [int(h) for h in hidden.split(",")]
    if out.exists():
        raise fail(f"{out} already exists; choose a new --out directory")
    if preset not in PRESETS:
        raise fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    try:
        train_set, test_set = load_data(data or PRESETS[preset].dataset, mnist_dir, download_root)
        params = resolve(preset, DataProfile.of(train_set), **given)  # the preset adapted to these images
        split = semi_supervised_split(train_set, params["labels_per_class"], params["seed"])
        model_config, train_config = configs_for(train_set, params, device=device, checkpoint_every=checkpoint_every,
                                                 compile=compile)
        check_bf16(train_config.bf16, train_config.device)
    except (DataError, ValueError) as error:
        raise fail(str(error)) from None
    trainer = Trainer(model_config, train_config, split, test_set)
    columns = [TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
               TextColumn("{task.fields[status]}"), TimeRemainingColumn()]
    with Progress(*columns, console=err) as progress:
        task = progress.add_task("train", total=train_config.epochs, status="")

        def show(report) -> None:
            test = f" test acc {report.test_accuracy:.4f}" if report.test_accuracy is not None else ""
            status = f"ELBO {report.elbo:.2f} labelled acc {report.labelled_accuracy:.3f}{test} {report.examples_per_second:.0f} ex/s"
            progress.update(task, completed=report.epoch, status=status)

        result = trainer.fit(on_epoch=show, checkpoint_dir=checkpoint_dir)
    save_model(out, result.model, result.card)
    typer.echo(json.dumps({"model": str(out), "preset": preset, **result.card["metrics"]}))


@app.command()
def evaluate(
    model_dir: Path,
    data: DataOption = "digits5k",
    mnist_dir: MnistDirOption = DEFAULT_MNIST_DIR,
    samples: Annotated[int, typer.Option(help="S, samples of a averaged in q(y|x) (paper: 100)")] = 100,
) -> None:
    """Test error of a saved model on a data set's test images."""
    predictor = load_predictor(model_dir)
    try:
        _, test_set = load_data(data, mnist_dir, None)
    except DataError as error:
        raise fail(str(error)) from None
    if test_set is None:
        raise fail(f"{data} has no test images (add test_images/test_labels to the .npz)")
    error = error_rate(predictor.model, test_set.images, test_set.labels, samples)
    typer.echo(json.dumps({"test_error": error, "test_images": len(test_set), "samples": samples}))


@app.command()
def sample(
    model_dir: Path,
    out: Annotated[Path, typer.Option(help="PNG file to write")],
    label: Annotated[list[int], typer.Option(help="label(s) to generate; repeat the option for several")],
    n: Annotated[int, typer.Option(help="images per label")] = 8,
    seed: int = 0,
) -> None:
    """Generate images of chosen labels into a PNG grid (same seed, same pixels)."""
    predictor = load_predictor(model_dir)
    labels = [lab for lab in label for _ in range(n)]
    try:
        images = predictor.sample(labels, seed)
    except ValueError as error:
        raise fail(str(error)) from None
    out.write_bytes(png_grid(images, columns=n))
    typer.echo(f"wrote {len(labels)} samples to {out}")


@app.command()
def classify(model_dir: Path, images: Annotated[list[Path], typer.Argument(help="PNG or JPEG files")]) -> None:
    """Class probabilities and novelty of image files of any size."""
    predictor = load_predictor(model_dir)
    for path in images:
        try:
            pixels = to_model_input(decode_upload(path.read_bytes()), predictor.config.x_shape)
        except (ImageError, OSError) as error:
            raise fail(f"{path}: {error}") from None
        probabilities, novelty = predictor.classify(pixels[None])
        typer.echo(json.dumps({"file": str(path), "label": int(np.argmax(probabilities[0])),
                               "probabilities": [round(float(p), 6) for p in probabilities[0]],
                               "novelty": round(float(novelty[0]), 4)}))


@app.command()
def export(model_dir: Path, out: Annotated[Path, typer.Option(help="ONNX file to write (must not exist)")]) -> None:
    """The classifier q(y|x) as ONNX: input `image` uint8 [N, H, W], output `probabilities` [N, K]."""
    from adgm_core.export import export_onnx

    if out.exists():
        raise fail(f"{out} already exists; choose a new --out file")
    out.write_bytes(export_onnx(load_predictor(model_dir)))
    typer.echo(json.dumps({"onnx": str(out), "bytes": out.stat().st_size}))


if __name__ == "__main__":
    app()

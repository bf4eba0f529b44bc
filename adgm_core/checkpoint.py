"""One checkpoint format: tensors in safetensors, everything else in JSON. Nothing is ever unpickled.

A model is a directory holding `model.safetensors` and `model.json` (the card: config, data set,
metrics, library version, sha256 of the weights). It is written under a temporary name and renamed
into place, so a reader sees the whole model or none of it.

A training state (for exact resume) is `state-<epoch>.safetensors` plus `state.json`; the JSON is
replaced last and names the tensor file it belongs to, so a crash mid-write leaves the previous
state valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import torch
from safetensors import SafetensorError
import safetensors.torch

from adgm_core import __version__
from adgm_core.config import ModelConfig
from adgm_core.model import ADGM
from adgm_core.model_files import (CARD_FILE, FORMAT, WEIGHTS_FILE, CheckpointError, read_card, read_checked_bytes,
                                   read_json)

STATE_FILE = "state.json"


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_json(path: Path, document: dict) -> None:
    _write_atomically(path, json.dumps(document, indent=2, sort_keys=True).encode())


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Writes the tensors as safetensors; returns the file's sha256, hashed from the bytes written."""
    data = safetensors.torch.save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    _write_atomically(path, data)
    return hashlib.sha256(data).hexdigest()


def _load_tensors(path: Path, expected_sha256: str | None) -> dict[str, torch.Tensor]:
    data = read_checked_bytes(path, expected_sha256)
    try:
        return safetensors.torch.load(data)
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file ({error}); it may be truncated") from None


def save_model(directory: Path | str, model: ADGM, card: dict) -> str:
    """Write the model atomically into `directory` (which must not exist yet); returns the weights' sha256."""
    directory = Path(directory)
    if directory.exists():
        raise CheckpointError(f"{directory} already exists; models are written once")
    staging = directory.with_name(f".{directory.name}.{uuid.uuid4().hex}.partial")
    staging.mkdir(parents=True)
    try:
        sha256 = _write_tensors(staging / WEIGHTS_FILE, model.state_dict())
        document = {**card, "format": FORMAT, "version": __version__, "config": model.config.to_dict(), "sha256": sha256}
        _write_json(staging / CARD_FILE, document)
        os.rename(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sha256


def load_model(directory: Path | str, expected_sha256: str | None = None) -> tuple[ADGM, dict]:
    """Load a model written by `save_model`; checks format, version, checksum and every shape."""
    directory = Path(directory)
    card = read_card(directory)
    expected = expected_sha256 or card.get("sha256")
    tensors = _load_tensors(directory / WEIGHTS_FILE, expected)
    try:
        model = ADGM(ModelConfig.from_dict(card["config"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"{directory / CARD_FILE} has an invalid config: {error}") from None
    load_weights(model, tensors, where=str(directory))
    model.eval()
    return model, card


def load_weights(model: ADGM, tensors: dict[str, torch.Tensor], where: str) -> None:
    expected = model.state_dict()
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise CheckpointError(f"{where}: weights do not fit the config (missing {missing[:3]}, unexpected {extra[:3]})")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{where}: {name} has shape {tuple(tensor.shape)}, config needs {tuple(expected[name].shape)}")
    model.load_state_dict(tensors)


def save_training_state(directory: Path | str, tensors: dict[str, torch.Tensor], document: dict) -> None:
    """Write a resumable state: tensors first, then the JSON that commits to them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = f"state-{document['epoch']:06d}.safetensors"
    sha256 = _write_tensors(directory / name, tensors)
    _write_json(directory / STATE_FILE, {**document, "tensors": name, "sha256": sha256})
    for old in directory.glob("state-*.safetensors"):
        if old.name != name:
            old.unlink(missing_ok=True)


def load_training_state(directory: Path | str) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The last committed training state in `directory`, or None when there is none."""
    directory = Path(directory)
    if not (directory / STATE_FILE).is_file():
        return None
    document = read_json(directory / STATE_FILE)
    return _load_tensors(directory / document["tensors"], document["sha256"]), document

"""The files of a saved model, read without torch: the card (`model.json`) and the weights' bytes
(`model.safetensors`), with the checks every reader makes. `adgm_core.checkpoint` writes them and
loads them into torch; `adgm_core.numpy_model` loads them into numpy for the API."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from adgm_core import __version__

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "model.json"
FORMAT = "adgm-serve/model"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, truncated or does not fit; the message says which."""


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is not valid JSON ({error}); the checkpoint is corrupt") from None


def read_card(directory: Path) -> dict:
    """The model card of `directory`, checked to be one of this format and major version."""
    card = read_json(directory / CARD_FILE)
    if card.get("format") != FORMAT:
        raise CheckpointError(f"{directory / CARD_FILE} is not an adgm-serve model card")
    major = str(card.get("version", "")).split(".")[0]
    if major != __version__.split(".")[0]:
        raise CheckpointError(f"model written by adgm_core {card.get('version')}, this is {__version__}")
    return card


def read_checked_bytes(path: Path, expected_sha256: str | None) -> bytes:
    """The bytes of a tensor file, checked against `expected_sha256` when given."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    data = path.read_bytes()  # read once: hashed, then parsed
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise CheckpointError(f"{path} does not match its recorded sha256: the file was altered or truncated")
    return data

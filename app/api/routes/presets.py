"""Presets: the named training recipes of `adgm_core.presets`, as the train form offers them."""

from fastapi import APIRouter

from adgm_core.presets import DEFAULT_PRESET, PRESETS
from app.schemas import PresetPublic, PresetsPublic

router = APIRouter(prefix="/presets", tags=["presets"])


@router.get("")
def list_presets() -> PresetsPublic:
    """Every preset with what it sets and the time and accuracy measured for it."""
    presets = [PresetPublic(name=p.name, description=p.description, expected=p.expected, dataset=p.dataset,
                            params=p.params, resolved=p.resolve()) for p in PRESETS.values()]
    return PresetsPublic(presets=presets, default=DEFAULT_PRESET)

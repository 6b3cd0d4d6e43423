"""Fixtures for the diffusers engine tests: the tiny checkpoints, built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import get_settings


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory) -> Path:
    """Every tiny engine built once per session, saved as a Hugging Face cache."""
    from tests.tiny_models import populate_cache

    cache = populate_cache(tmp_path_factory.mktemp("hf-cache"))
    old = os.environ.get("DROPREEL_HF_CACHE_DIR")
    os.environ["DROPREEL_HF_CACHE_DIR"] = str(cache)
    get_settings.cache_clear()
    yield cache
    if old is None:
        os.environ.pop("DROPREEL_HF_CACHE_DIR", None)
    else:
        os.environ["DROPREEL_HF_CACHE_DIR"] = old
    get_settings.cache_clear()

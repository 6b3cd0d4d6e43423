"""Parsing at the edge: one pydantic model per event source, all ending in `ObjectEvent`."""

from triggers.events.model import ObjectEvent

__all__ = ["ObjectEvent"]

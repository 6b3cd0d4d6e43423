"""Settings, routing rules and limits: read by every other package, depends on none of them."""

from config.settings import Settings, get_settings

__all__ = ["Settings", "get_settings"]

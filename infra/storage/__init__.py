"""Storage backends behind the `handlers.storage.Storage` port."""

from infra.storage.open import open_storage

__all__ = ["open_storage"]

"""A preview engine that takes its time, so a test can kill a worker mid-render."""

from __future__ import annotations

import os
import time

from gpu.preview import PreviewEngine
from gpu.registry import EngineSpec, register


class SlowPreviewEngine(PreviewEngine):
    name = "slow-preview"

    def render(self, plan, progress=None):
        delay = float(os.environ.get("SLOW_ENGINE_FRAME_DELAY", "0.05"))
        for frame in super().render(plan, progress):
            time.sleep(delay)
            yield frame


SPEC = EngineSpec(
    name="slow-preview",
    kinds=("talking_head", "text_to_video", "image_to_video"),
    target="tests.slow_engine:SlowPreviewEngine",
    preview=True,
)

if __name__ == "__main__":
    import sys

    from infra.cli.main import main

    register(SPEC)
    sys.exit(main(["watch", "--once"]))

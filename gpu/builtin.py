"""The engines that ship with dropreel. Adding one is one `register` call."""

from __future__ import annotations

from gpu.registry import EngineSpec, register

register(
    EngineSpec(
        name="preview",
        kinds=("talking_head", "text_to_video", "image_to_video"),
        target="gpu.preview:PreviewEngine",
        preview=True,
        description="CPU preview, no weights: the still image over the audio, or a prompt card.",
        license="Apache-2.0 (dropreel's own code)",
    )
)

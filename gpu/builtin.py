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

register(
    EngineSpec(
        name="infinitetalk",
        kinds=("talking_head",),
        target="gpu.infinitetalk.engine:InfiniteTalkEngine",
        gpu="H100",
        description="InfiniteTalk: Wan2.1-I2V-14B + audio adapter, lip-synced talking heads "
        "of any length at 480p (720p with the quality profile), 25 fps.",
        license="Wan2.1 Apache-2.0; InfiniteTalk Apache-2.0; chinese-wav2vec2-base MIT",
    )
)

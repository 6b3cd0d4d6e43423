"""The engines that ship with dropreel. Adding one is one `register` call."""

from __future__ import annotations

from gpu.registry import EngineSpec, register

# max_render_seconds sizes each engine's Modal timeout: the longest clip its most generous
# profile accepts, at a pessimistic speed on the default GPU (talking heads: 300 s of audio on
# the fast profile or 180 s on balanced; text/image-to-video: the model's longest clip at the
# quality profile). A render that outlives it is stopped and retried as a transient failure.

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
        name="ltx-video",
        kinds=("text_to_video", "image_to_video"),
        target="gpu.ltx_video:LTXVideoEngine",
        gpu="H100",
        description="LTX-Video (Lightricks): 2B distilled (fast), 13B (balanced, quality).",
        license="LTX-Video Open Weights License (see docs/ENGINES.md)",
        max_render_seconds=1800,
    )
)

register(
    EngineSpec(
        name="wan2.2-ti2v-5b",
        kinds=("text_to_video", "image_to_video"),
        target="gpu.wan22:Wan22Engine",
        gpu="H100",
        description="Wan2.2 TI2V-5B (Wan-AI): 1280x704 at 24 fps, text or image to video.",
        license="Apache-2.0",
        max_render_seconds=3600,
    )
)

register(
    EngineSpec(
        name="mochi",
        kinds=("text_to_video",),
        target="gpu.mochi:MochiEngine",
        gpu="H100",
        description="Mochi 1 preview (Genmo): 848x480 at 30 fps, text to video.",
        license="Apache-2.0",
        max_render_seconds=3600,
    )
)

register(
    EngineSpec(
        name="hunyuanvideo-1.5",
        kinds=("text_to_video", "image_to_video"),
        target="gpu.hunyuan15:HunyuanVideo15Engine",
        gpu="H100",
        description="HunyuanVideo 1.5 (Tencent): 480p (fast, balanced) and 720p (quality).",
        license="Tencent Hunyuan Community License (see docs/ENGINES.md)",
        max_render_seconds=5400,
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
        max_render_seconds=14400,
    )
)

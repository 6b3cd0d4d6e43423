"""The engines that ship with dropreel. Adding one is one `register` call.

Each engine's facts live in one record: the diffusers models' `ModelSpec`s in
`gpu/diffusers_models.py`, InfiniteTalk's in `gpu/infinitetalk/spec.py`, LongCat-Video-Avatar's
in `gpu/longcat/spec.py`, the preview here.
max_render_seconds sizes each engine's Modal timeout: the longest clip its most generous profile
accepts, at a pessimistic speed on the default GPU. A render that outlives it is stopped and
retried as a transient failure.
"""

from __future__ import annotations

from gpu.diffusers_models import MODELS
from gpu.infinitetalk.spec import INFINITETALK
from gpu.longcat.spec import LONGCAT_AVATAR
from gpu.registry import EngineSpec, register
from gpu.speech.spec import SPEECH_ENGINES

register(
    EngineSpec(
        name="preview",
        kinds=("talking_head", "dubbing", "text_to_video", "image_to_video"),
        target="gpu.preview:PreviewEngine",
        preview=True,
        description="CPU preview, no weights: the still image over the audio, the source video "
        "over the new audio, or a prompt card.",
        license="Apache-2.0 (dropreel's own code)",
        segments=True,
    )
)

for model in MODELS.values():
    register(model)

register(INFINITETALK)
register(LONGCAT_AVATAR)
for speech in SPEECH_ENGINES:
    register(speech)

"""LongCat-Video-Avatar talking-head engine: Meituan's LongCat-Video DiT with its audio modules.

No maintained library ships this model (diffusers does not), so this package holds it, written
from the facts of the reference implementation (meituan-longcat/LongCat-Video) on diffusers and
transformers building blocks:

- `model`: the DiT as a diffusers `ModelMixin`, with the reference's module names;
- `keymap`: the one place that says how published names meet ours (the same, checked);
- `audio`: Whisper-large-v3 (v1.5) or wav2vec2 (v1.0) features in the reference's layout;
- `pipeline`: loading, and the segment loop (93 frames, 13 carried into the next segment);
- `profiles`: fast (v1.5 + DMD LoRA, 8 steps), quality (v1.0, 50 steps), low_vram;
- `engine`: the dropreel `Engine` (load, check_inputs, render); `weights` and `spec`: what is
  pulled, and the registry record.

Importing this package does not import torch; the submodules that need it do.
"""

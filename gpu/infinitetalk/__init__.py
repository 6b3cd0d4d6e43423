"""InfiniteTalk talking-head engine: Wan2.1-I2V-14B (diffusers) plus MeiGen-AI's audio adapter.

diffusers ships no InfiniteTalk pipeline, so this package holds one, written from the facts of the
reference implementation (MeiGen-AI/InfiniteTalk, built on MeiGen-AI/MultiTalk):

- `audio`: 16 kHz mono, loudness to -23 LUFS, wav2vec2 features of every layer at 25 fps.
- `model`: diffusers' `WanTransformer3DModel` with the audio projection and per-block audio
  cross-attention, named so the published checkpoints load key for key.
- `keymap`: the one place that maps the published (original Wan) key names to ours.
- `sampler`: the flow-matching schedule, text + audio guidance, motion-frame continuation.
- `engine`: the dropreel `Engine` (load, check_inputs, render).
- `weights`: which repositories, revisions and files (typed as `gpu/weights.py` declares every
  engine's weights), offline resolution; `spec`: the registry record (kinds, GPU, licence, limits).

Importing this package does not import torch; the submodules that need it do.
"""

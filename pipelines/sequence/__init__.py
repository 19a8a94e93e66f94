"""Sequence machinery shared by the zoom and video pipelines: the frame scheduler and its
per-frame plan, checkpoints and resume, the output lock, loops, and the hand-off of frames to
the encoders (render)."""

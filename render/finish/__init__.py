"""Finishing after the dream: frame interpolation (RIFE in TensorFlow, or a bidirectional DIS
flow warp without weights) and upscaling (Real-ESRGAN's ncnn models, or Lanczos). Frames in
and out are uint8 RGB (H, W, 3)."""

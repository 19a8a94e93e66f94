"""How the previous dream is carried into the next frame: affine camera motion (affine),
optical flow and its trust mask (flow), the video's flow-carried motion source (carry), and
colour coherence (color)."""

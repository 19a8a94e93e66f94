"""Names the engine accepts for its options, importable without TensorFlow: presets are
validated against them before TensorFlow loads."""

SMOOTHING = ("none", "gaussian", "laplacian")  # gradient smoothing, see render.gradients

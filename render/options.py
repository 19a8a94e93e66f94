"""Names the engine accepts for its options, importable without TensorFlow: presets are
validated against them before TensorFlow loads."""

SMOOTHING = ("none", "gaussian", "laplacian")  # gradient smoothing, see render.gradients
# number format of the network (weights and activations), see render.precision
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

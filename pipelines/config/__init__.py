"""Configuration: YAML presets and overrides (presets), the keys each pipeline takes (keys),
their validation (schema), keyframe schedules (keyframes) and the typed settings pipelines
read (settings). Nothing here imports TensorFlow."""

"""Where a model's weights come from (resolve: file, Keras cache, bounded download, packaged,
fallback), reading packaged weight files safely (restricted PyTorch and NumPy unpicklers that
build nothing but arrays), setting them on a Keras model, and the converted-weights cache."""

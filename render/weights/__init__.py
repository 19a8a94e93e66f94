"""Reading packaged weight files safely (restricted PyTorch and NumPy unpicklers that build no
object but arrays) and the cache of converted weights."""

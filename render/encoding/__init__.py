"""Encoding finished frames: the streaming encoder (encoder) to H.264 MP4 or GIF, the GIF's
ffmpeg palette (gif_palette), libimagequant palettes (gif_imagequant) and gifsicle's optimiser
(gifsicle)."""

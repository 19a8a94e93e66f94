"""Media I/O through the bundled ffmpeg and OpenCV: still images (image, image_header), video
frames (video), audio PCM (audio) and the ffmpeg runner they share (ffmpeg)."""

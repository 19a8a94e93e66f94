"""dreamreel pipelines: presets, the frame scheduler, the still/zoom/video/loop/layers
pipelines and the command line (`python -m pipelines`)."""

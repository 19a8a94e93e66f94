"""MP4 audio that players play (issue 14, item 8): only AAC and MP3 are copied from the source;
AC-3 (which browsers and QuickTime do not play in an MP4) and the rest are encoded to AAC."""

from __future__ import annotations

import json

import pytest
from conftest import QUIET, video_preset
from media_probe import audio_streams, ffmpeg

from pipelines import video
from render.encoding.encoder import AudioTrack


@pytest.mark.parametrize("codec,copied", [("aac", True), ("mp3", True), ("ac3", False),
                                          ("eac3", False), ("alac", False), ("opus", False),
                                          ("flac", False), ("pcm_s16le", False), (None, False)])
def test_only_codecs_every_player_plays_are_copied(tmp_path, codec, copied):
    assert AudioTrack(tmp_path / "in.mp4", codec=codec).copy is copied


@pytest.mark.parametrize("codec,expected", [("ac3", "aac"), ("libmp3lame", "mp3")])
def test_source_audio_ends_up_playable(tmp_path, codec, expected):
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25:duration=0.6", "-f", "lavfi",
           "-i", "sine=frequency=440:sample_rate=48000:duration=0.6", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", "-c:a", codec, str(src))
    assert audio_streams(src) == [codec.removeprefix("lib").removesuffix("lame")]
    video.run(video_preset(f"input={src}", f"output={out}", "frames=4"), QUIET)
    assert audio_streams(out) == [expected]
    record = json.loads((tmp_path / "out.mp4.json").read_text())
    assert record["audio"]["mux"] == ("copied" if expected == "mp3" else "aac")

"""Timelines at rates OTIO's timecode parser does not know (demo clips are often 8-16 fps)."""

import numpy as np
import opentimelineio as otio
import pytest

from shotsketch.media.encode import write_clip
from shotsketch.media.timeline import write_timeline


@pytest.mark.parametrize("fps", [12, 16])
def test_otio_timeline_at_uncommon_rates_starts_at_one_hour(tmp_path, fps):
    frames = np.zeros((9, 48, 64, 3), np.uint8)
    clips = [write_clip(frames, tmp_path / f"c{i}.mp4", fps=fps) for i in range(2)]
    out = write_timeline(clips, tmp_path / "t.otio")
    timeline = otio.adapters.read_from_file(str(out))
    assert timeline.global_start_time.to_seconds() == pytest.approx(3600)
    assert [c.duration().value for c in timeline.find_clips()] == [9, 9]
    assert timeline.find_clips()[0].duration().rate == fps

import numpy as np
import pytest

from vstar_ray.stages import decode_batch
from vstar_ray.video import DecodeError, decode_clip, sample_indices


def test_every_real_video_decodes(realdata):
    videos = sorted((realdata / "videos").iterdir())
    assert len(videos) == 8
    for path in videos:  # includes the GIF decord cannot open and the VP9 webm it mis-reads with threads
        frames = decode_clip(str(path), 8, 56)
        assert frames.shape == (8, 56, 56, 3) and frames.dtype == np.uint8
        assert frames.std() > 1, path.name


def test_clip_window_uses_start_end(realdata):
    path = str(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4")
    whole, first_second = decode_clip(path, 4, 32), decode_clip(path, 4, 32, start=0.0, end=1.0)
    assert not np.array_equal(whole, first_second)
    with pytest.raises(DecodeError, match="beyond the video"):
        decode_clip(path, 4, 32, start=99.0, end=100.0)


def test_uniform_sampling():
    assert sample_indices(16, 8).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]
    assert sample_indices(3, 8).max() == 2


def test_bad_files_become_error_rows(tmp_path, realdata):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    good = realdata / "videos" / "ssv2_closing_something__human2bot_task5_0.webm"
    batch = {
        "id": np.array(["a", "b", "c", "d", "e"], dtype=object),
        "video": np.array(["empty.mp4", "text.mp4", str(good), "missing.mp4", "../../etc/passwd"], dtype=object),
    }
    out = decode_batch(batch, str(tmp_path), 8, 32)
    errors = list(out["error"])
    assert errors[2] == "" and out["frames"][2].std() > 1
    assert all(e.startswith("decode failed") for i, e in enumerate(errors) if i != 2)
    assert "escapes the video root" in errors[4]

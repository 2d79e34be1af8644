import numpy as np
import pytest

from vstar_ray.data.decode import decode_batch
from vstar_ray.data.video import DecodeError, decode_clip, sample_indices


def test_every_real_video_decodes(realdata):
    videos = sorted((realdata / "videos").iterdir())
    assert len(videos) == 8
    for path in videos:  # includes the GIF decord cannot open and the VP9 webm it mis-reads with threads
        frames = decode_clip(str(path), 8, 56).frames
        assert frames.shape == (8, 56, 56, 3) and frames.dtype == np.uint8
        assert frames.std() > 1, path.name


def test_clip_window_uses_start_end(realdata):
    path = str(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4")
    whole, first_second = decode_clip(path, 4, 32).frames, decode_clip(path, 4, 32, start=0.0, end=1.0).frames
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


def _write_video(path, frames, codec="libx264", fps=8):
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _write_audio_only(path):
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 16000), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_awkward_videos_decode_or_fail_cleanly(tmp_path):
    """1-frame, very large, very long and truncated clips; an audio-only file and a decoder that hangs."""
    import os

    rng = np.random.default_rng(0)
    _write_video(tmp_path / "one_frame.mp4", rng.integers(0, 255, (1, 64, 64, 3), dtype=np.uint8))
    _write_video(tmp_path / "large.mp4", rng.integers(0, 255, (3, 1088, 1920, 3), dtype=np.uint8))
    _write_video(tmp_path / "long.mp4", np.repeat((np.arange(600) * 250 // 600).astype(np.uint8)[:, None, None, None],
                                                  16 * 16 * 3).reshape(600, 16, 16, 3), fps=30)
    good = (tmp_path / "long.mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(good[: len(good) // 3])
    _write_audio_only(tmp_path / "audio_only.m4a")
    os.mkfifo(tmp_path / "hangs.mp4")  # opening a FIFO with no writer blocks inside the decoder, for real
    names = ["one_frame.mp4", "large.mp4", "long.mp4", "truncated.mp4", "audio_only.m4a", "hangs.mp4", "large.mp4"]
    batch = {"id": np.array(names, dtype=object), "video": np.array(names, dtype=object)}
    out = decode_batch(batch, str(tmp_path), 8, 32, timeout_s=3.0)
    errors = dict(zip(range(len(names)), out["error"]))
    for i in (0, 1, 2, 6):  # 6: the decoder child killed for the FIFO is replaced for the next clip
        assert errors[i] == "", (names[i], errors[i])
        assert out["frames"][i].shape == (8, 32, 32, 3)
    long_means = out["frames"][2].reshape(8, -1).mean(axis=1)
    assert np.all(np.diff(long_means) > 0), "frames must be spread over the whole long clip, in order"
    assert errors[4].startswith("decode failed") and "decord" in errors[4] and "pyav" in errors[4]
    assert "took longer than 3.0s" in errors[5]
    # a truncated mp4 either decodes what is there or is an error row; it never raises
    assert errors[3] == "" or errors[3].startswith("decode failed")


def test_videos_by_uri_are_read_through_pyarrow_filesystems(tmp_path, realdata):
    """file:// goes through the same pyarrow filesystem path as s3:// or gs:// (no network here)."""
    import shutil

    from vstar_ray.data.manifest import video_root_for

    (tmp_path / "clips").mkdir()
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", tmp_path / "clips" / "a.mp4")
    root = video_root_for(f"file://{tmp_path}/manifest.parquet", "")
    assert root == f"file://{tmp_path}"
    names = ["clips/a.mp4", "clips/missing.mp4", "../etc/passwd", f"file://{tmp_path}/clips/a.mp4"]
    batch = {"id": np.array(list("abcd"), dtype=object), "video": np.array(names, dtype=object)}
    out = decode_batch(batch, root, 4, 32, timeout_s=30.0)
    errors = list(out["error"])
    assert errors[0] == "" and errors[3] == "" and np.array_equal(out["frames"][0], out["frames"][3])
    local = decode_clip(str(tmp_path / "clips" / "a.mp4"), 4, 32).frames
    assert np.array_equal(out["frames"][0], local)
    assert errors[1].startswith("decode failed: cannot read") and "escapes the video root" in errors[2]


def test_a_decoded_clip_carries_its_frame_times(realdata):
    """Which frames of the clip window were sampled, at what rate: what Qwen2.5/3-VL and SmolVLM2 need."""
    path = str(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4")  # 280 frames at 28 fps
    whole = decode_clip(path, 8, 32)
    assert whole.fps == pytest.approx(28.0) and whole.clip_frames == 280
    assert whole.frame_indices.tolist() == sample_indices(280, 8).tolist()
    window = decode_clip(path, 8, 32, start=1.0, end=3.0)  # frames 28..83, counted from the window's start
    assert window.clip_frames == 56 and window.frame_indices.tolist() == sample_indices(56, 8).tolist()
    gif = decode_clip(str(realdata / "videos" / "tempcompass_1021488277__pineapple_pickup.gif"), 8, 32)  # PyAV
    assert gif.clip_frames == 65 and gif.fps > 0 and gif.frame_indices.tolist() == sample_indices(65, 8).tolist()


def test_decord_and_pyav_sample_the_same_frames(realdata):
    from vstar_ray.data.video import decode_with_decord, decode_with_pyav

    path = str(realdata / "videos" / "ucf101_like_apply_eye_makeup__mmaction2_test.avi")
    a, b = decode_with_decord(path, 8, 64, 1.0, 4.0), decode_with_pyav(path, 8, 64, 1.0, 4.0)
    assert a.fps == b.fps and a.clip_frames == b.clip_frames and a.frame_indices.tolist() == b.frame_indices.tolist()
    assert np.abs(a.frames.astype(int) - b.frames.astype(int)).mean() < 3


def test_pyav_keeps_only_the_sampled_frames_in_memory(realdata):
    """The 1080p AVI holds 103 frames (640 MB decoded); sampling while decoding keeps a few at a time."""
    import tracemalloc

    from vstar_ray.data.video import decode_with_pyav

    path = str(realdata / "videos" / "ntu_A001_drink_water__S001C001P001R001A001_rgb.avi")
    tracemalloc.start()
    try:
        clip = decode_with_pyav(path, 8, 64, None, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert clip.frames.shape == (8, 64, 64, 3) and clip.clip_frames == 103
    assert peak < 60 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_a_negative_clip_window_is_an_error_not_frames_from_the_end(realdata):
    from vstar_ray.data.video import decode_with_pyav

    path = str(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4")
    for decode in (decode_clip, lambda *a: decode_with_pyav(*a)):
        with pytest.raises(DecodeError, match="negative clip window"):
            decode(path, 4, 32, -2.0, 1.0)

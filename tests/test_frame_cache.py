"""The frame cache (``data.frame_cache``) on real videos: a clip is decoded once, read back byte-identical, decoded
again when anything its frames depend on changes, and a damaged entry is detected, counted and decoded again."""

import os
import shutil
import threading

import numpy as np
import pytest

from vstar_ray.data import frame_cache as fc
from vstar_ray.data.decode import decode_batch
from vstar_ray.data.video import decode_clip

VIDEO = "k400_arm_wrestling__mmaction2_demo.mp4"


def _batch(videos, starts=None, ends=None):
    n = len(videos)
    return {"id": np.array([f"v{i}" for i in range(n)], dtype=object), "video": np.array(videos, dtype=object),
            "start": np.array(starts if starts is not None else [np.nan] * n, dtype=float),
            "end": np.array(ends if ends is not None else [np.nan] * n, dtype=float)}


@pytest.fixture
def videos(realdata, tmp_path):
    folder = tmp_path / "videos"
    shutil.copytree(realdata / "videos", folder)
    return folder


def test_a_clip_is_decoded_once_and_read_back_byte_identical(videos, tmp_path):
    cache = str(tmp_path / "cache")
    names = sorted(os.listdir(videos))
    first = decode_batch(_batch(names), str(videos), 4, 32, frame_cache=cache)
    assert not any(first["error"]), first["error"]
    assert list(first["frames_from"]) == ["file"] * len(names)
    again = decode_batch(_batch(names), str(videos), 4, 32, frame_cache=cache)
    assert list(again["frames_from"]) == ["cache"] * len(names) and not again["cache_damaged"].any()
    for key in ("frames", "fps", "frame_index", "clip_frames"):
        assert np.array_equal(first[key], again[key]), key
    plain = decode_batch(_batch(names), str(videos), 4, 32)  # no cache: the frames a decoder makes
    assert list(plain["frames_from"]) == ["file"] * len(names)
    assert np.array_equal(plain["frames"], again["frames"])  # lz4: lossless
    # JPEG: every consumer, the pass that decoded the clip included, reads the frames as the entry holds them
    jpeg = [decode_batch(_batch(names), str(videos), 4, 32, frame_cache=str(tmp_path / "jpeg"),
                         frame_cache_format="jpeg") for _ in range(2)]
    assert [list(j["frames_from"]) for j in jpeg] == [["file"] * len(names), ["cache"] * len(names)]
    assert np.array_equal(jpeg[0]["frames"], jpeg[1]["frames"])
    assert 0 < np.abs(plain["frames"].astype(int) - jpeg[0]["frames"].astype(int)).mean() < 3


def test_the_key_changes_with_everything_the_frames_depend_on(videos):
    path = str(videos / VIDEO)
    base = fc.entry_key(path, None, None, 8, 224, 0.0)
    assert fc.entry_key(path, None, None, 8, 224, 0.0) == base
    changed = [fc.entry_key(path, 1.0, None, 8, 224, 0.0), fc.entry_key(path, None, 2.0, 8, 224, 0.0),
               fc.entry_key(path, None, None, 4, 224, 0.0), fc.entry_key(path, None, None, 8, 112, 0.0),
               fc.entry_key(path, None, None, 8, 224, 5.0), fc.entry_key(path, None, None, 8, 224, 0.0, "jpeg")]
    other = videos / "copy.mp4"
    shutil.copy(path, other)
    changed.append(fc.entry_key(str(other), None, None, 8, 224, 0.0))  # another file
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the same file, rewritten
    changed.append(fc.entry_key(path, None, None, 8, 224, 0.0))
    assert len(set(changed)) == len(changed) and base not in changed


def test_a_rewritten_video_is_decoded_again(videos, tmp_path):
    cache = str(tmp_path / "cache")
    before = decode_batch(_batch([VIDEO]), str(videos), 4, 32, frame_cache=cache)
    shutil.copy(videos / "kinetics_flipping_pancake__decord.mkv", videos / VIDEO)  # new content, same name
    after = decode_batch(_batch([VIDEO]), str(videos), 4, 32, frame_cache=cache)
    assert list(after["frames_from"]) == ["file"]
    expected = decode_clip(str(videos / VIDEO), 4, 32).frames
    assert np.array_equal(after["frames"][0], expected) and not np.array_equal(before["frames"][0], expected)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "header"])
def test_a_damaged_entry_is_detected_counted_and_decoded_again(videos, tmp_path, damage):
    cache = str(tmp_path / "cache")
    first = decode_batch(_batch([VIDEO]), str(videos), 4, 32, frame_cache=cache)
    (entry,) = list((tmp_path / "cache").rglob("*.clip"))
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[len(data) // 2 + 7] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) * 2 // 3]
    elif damage == "empty":
        data = bytearray()
    else:
        data[len(fc.MAGIC) + 6] ^= 0x20
    entry.write_bytes(bytes(data))
    again = decode_batch(_batch([VIDEO]), str(videos), 4, 32, frame_cache=cache)
    assert list(again["frames_from"]) == ["file"] and list(again["cache_damaged"]) == [True]
    assert np.array_equal(again["frames"], first["frames"])
    third = decode_batch(_batch([VIDEO]), str(videos), 4, 32, frame_cache=cache)  # the entry was written again
    assert list(third["frames_from"]) == ["cache"] and np.array_equal(third["frames"], first["frames"])


def test_concurrent_writers_of_one_clip_leave_one_whole_entry(videos, tmp_path):
    cache = fc.FrameCache(str(tmp_path / "cache"))
    clip = decode_clip(str(videos / VIDEO), 8, 64)
    key = fc.entry_key(str(videos / VIDEO), None, None, 8, 64, 0.0)
    stored = []
    threads = [threading.Thread(target=lambda: stored.append(cache.put(key, clip))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [f"{key}.clip"]  # no temporary file left
    assert len(stored) == 8 and all(np.array_equal(cache.get(key).frames, s.frames) for s in stored)


def test_a_cache_that_cannot_be_written_fails_naming_the_file(videos, tmp_path):
    cache = tmp_path / "cache"
    cache.write_text("a file where the cache folder should be")
    with pytest.raises(OSError, match="cache"):
        decode_batch(_batch([VIDEO]), str(videos), 4, 32, frame_cache=str(cache))
    broken = decode_batch(_batch(["missing.mp4"]), str(videos), 4, 32, frame_cache=str(tmp_path / "ok"))
    assert broken["error"][0].startswith("decode failed") and list(broken["frames_from"]) == [""]


@pytest.mark.slow
def test_a_two_cycle_run_decodes_each_clip_once(lora_run, small_kit):
    """Over a whole run (a baseline eval, then two cycles of generate, train and eval), clips decoded from video
    files equal the distinct clips: every later pass, epoch and eval reads the frame cache, and says so."""
    import json

    import pyarrow.parquet as pq

    out, _ = lora_run
    metrics = json.loads((out / "metrics.json").read_text())
    train = pq.read_metadata(small_kit / "train.parquet").num_rows
    held = pq.read_metadata(small_kit / "heldout.parquet").num_rows
    fresh = {"decoded": held, "cache_hits": 0, "cache_damaged": 0}
    assert metrics["baseline"]["frames"] == fresh
    first, second = metrics["cycles"]
    assert first["frames"] == {"generate": {"decoded": train, "cache_hits": 0, "cache_damaged": 0},
                               "eval": {"decoded": 0, "cache_hits": held, "cache_damaged": 0}}
    assert second["frames"] == {"generate": {"decoded": 0, "cache_hits": train, "cache_damaged": 0},
                                "eval": {"decoded": 0, "cache_hits": held, "cache_damaged": 0}}
    for cycle in (first, second):
        assert cycle["train"]["decoded"] == 0 and cycle["train"]["cache_hits"] == cycle["train"]["samples"] > 0
    assert len(list((out / "frame_cache").rglob("*.clip"))) == train + held

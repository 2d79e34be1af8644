"""Tiny benchmark inputs in each official format, over the real videos of ``../shared/realdata``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

VIDEOS = {"k400_arm_wrestling__mmaction2_demo.mp4": "v_armwrestle.mp4",  # ActivityNet names files v_<name>
          "kinetics_flipping_pancake__decord.mkv": "pancake.mkv",
          "ucf101_like_apply_eye_makeup__mmaction2_test.avi": "makeup.avi"}


def videos(realdata: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for source, name in VIDEOS.items():
        shutil.copy(realdata / "videos" / source, out / name)
    return out


def openqa(out: Path) -> tuple[Path, Path]:
    """Video-ChatGPT-format test_q.json / test_a.json; the answers in another order than the questions (they are
    joined by question_id) and with a question ``type``."""
    out.mkdir(parents=True, exist_ok=True)
    questions = [{"video_name": "armwrestle", "question": "what are the two men doing", "question_id": "v_1"},
                 {"video_name": "pancake", "question": "what is flipped in the pan", "question_id": "v_2"},
                 {"video_name": "makeup", "question": "what is the woman applying", "question_id": "v_3"},
                 {"video_name": "missing_video", "question": "what is this", "question_id": "v_4"}]
    answers = [{"answer": "makeup", "type": 0, "question_id": "v_3"},
               {"answer": "arm wrestling", "type": 1, "question_id": "v_1"},
               {"answer": "pancake", "type": 0, "question_id": "v_2"},
               {"answer": "nothing", "type": 1, "question_id": "v_4"}]
    (out / "test_q.json").write_text(json.dumps(questions))
    (out / "test_a.json").write_text(json.dumps(answers))
    return out / "test_q.json", out / "test_a.json"


def videochatgpt(out: Path) -> Path:
    """The generation benchmark's three files."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "generic_qa.json").write_text(json.dumps([
        {"video_name": "pancake", "Q": "What is happening in the video?", "A": "A pancake is flipped in a pan."},
        {"video_name": "armwrestle", "Q": "Describe the video.", "A": "Two men are arm wrestling at a table."}]))
    (out / "temporal_qa.json").write_text(json.dumps([
        {"video_name": "makeup", "Q": "What does the woman do first?", "A": "She applies eye makeup."}]))
    (out / "consistency_qa.json").write_text(json.dumps([
        {"video_name": "pancake", "Q1": "What food is cooked?", "Q2": "What is in the pan?", "A": "A pancake."}]))
    return out


def tempcompass(realdata: Path, out: Path) -> tuple[Path, Path]:
    """The real question files and meta_info, and a videos folder with the one TempCompass video at hand (its
    reverse present but undecodable)."""
    videos_dir = out / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(realdata / "videos" / "tempcompass_1021488277__pineapple_pickup.gif", videos_dir / "1021488277.gif")
    (videos_dir / "1021488277_reverse.mp4").write_bytes(b"not a video")
    return realdata / "annotations" / "tempcompass", videos_dir

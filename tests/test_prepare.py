"""``vstar prepare``: every source reads the real annotation files in ../shared/realdata as they are."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from vstar_ray import prompts
from vstar_ray.prepare import prepare
from vstar_ray.prepare.common import AnnotationError
from vstar_ray.prepare.safe_pickle import UnsafePickleError, load


def skipped(report):
    return {json.loads(line)["id"]: json.loads(line)["reason"] for line in open(report["skipped_file"])}


def no_leaks(manifest):
    df = pd.read_parquet(manifest)
    for row in df.itertuples():
        assert not prompts.leaked_words(row.question, json.loads(row.labels), json.loads(row.verifiers)), row.id
    return df


def test_kinetics_csv_flat_and_per_label_folders(realdata, tmp_path):
    ann = realdata / "annotations" / "kinetics"
    videos = tmp_path / "clips"
    (videos / "washing feet").mkdir(parents=True)
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", videos / "---QUuC4vJs_000084_000094.mp4")
    shutil.copy(realdata / "videos" / "kinetics_flipping_pancake__decord.mkv",
                videos / "washing feet" / "--GkrdYZ9Tc_000000_000010.mkv")
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", videos / "--nQbRBEz2s.mp4")  # full video
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", videos / "-0XtezGo2MM_000283_000293.mp4")
    report = prepare("kinetics700", ann / "k700_validate.head200.csv", videos, tmp_path / "k.parquet",
                     classes=str(ann / "label_map_k700__mmaction2.txt"))
    df = no_leaks(tmp_path / "k.parquet").set_index("id")
    assert report["rows"] == 4 and report["skipped"] == 196
    assert json.loads(df.loc["--GkrdYZ9Tc_000000_000010", "labels"]) == {"action": "washing feet"}
    assert df.loc["--nQbRBEz2s_000104_000114", "start"] == 104 and df.loc["--nQbRBEz2s_000104_000114", "end"] == 114
    assert np.isnan(df.loc["---QUuC4vJs_000084_000094", "start"])
    assert "video not found" in skipped(report)["-07WVYMSwac_000020_000030"]
    prepare("kinetics700", ann / "k700_validate.head200.csv", videos, tmp_path / "k2.parquet",
                    classes=str(ann / "label_map_k700__mmaction2.txt"))
    assert pd.read_parquet(tmp_path / "k2.parquet").equals(pd.read_parquet(tmp_path / "k.parquet"))  # reproducible
    test_split = prepare("kinetics700", ann / "k700_test.head200.csv", videos, tmp_path / "t.parquet")
    assert test_split["rows"] == 0 and test_split["skipped_by_reason"] == {"no label": 200}
    k400 = prepare("kinetics700", ann / "k700_validate.head200.csv", videos, tmp_path / "k4.parquet",
                   classes=str(ann / "label_map_k400__mmaction2.txt"))
    assert "unknown class 'assembling bicycle'" in skipped(k400)["-0XtezGo2MM_000283_000293"]  # a K700-only class


def test_wrong_format_is_one_clear_error(realdata, tmp_path):
    res = subprocess.run([sys.executable, "-m", "vstar_ray", "prepare", "--source", "kinetics700", "--annotations",
                          str(realdata / "annotations/ssv2/test-answers.head200.csv"), "--videos", str(tmp_path),
                          "--out", str(tmp_path / "m.parquet")], capture_output=True, text=True)
    assert res.returncode == 2 and "not a Kinetics CSV" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(AnnotationError, match="FineDiving_coarse_annotation.pkl not found"):
        prepare("finediving", realdata / "annotations/kinetics", tmp_path, tmp_path / "m.parquet")


def test_finediving_pickles_frame_folders_and_mp4(realdata, tmp_path):
    videos = tmp_path / "dives"
    (videos / "01" / "1").mkdir(parents=True)
    for i in range(12):
        Image.fromarray(np.full((32, 32, 3), i * 20, np.uint8)).save(videos / "01" / "1" / f"{7378 + i:05d}.jpg")
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", videos / "01_3.mp4")
    report = prepare("finediving", realdata / "annotations/finediving", videos, tmp_path / "fd.parquet")
    df = no_leaks(tmp_path / "fd.parquet").set_index("id")
    assert json.loads(df.loc["01_1:steps", "labels"]) == {"steps": ["inward", "3.5 somersaults tuck", "entry"]}
    assert json.loads(df.loc["01_1:steps", "verifiers"]) == {"steps": "sentence_sequence"}
    assert json.loads(df.loc["01_1:score", "labels"]) == {"score": 88.0}
    assert json.loads(df.loc["01_1:difficulty", "labels"]) == {"difficulty": 3.2}
    assert json.loads(df.loc["01_3:after1", "labels"]) == {"next": "2.5 somersaults pike"}
    assert "1.5 twists" in df.loc["01_3:after1", "question"]
    assert df.loc["01_1:score", "split"] == "test" and df.loc["01_3:score", "split"] == "train"
    assert report["skipped"] == 2998 and set(report["skipped_by_reason"]) == {"video not found"}
    from vstar_ray.data.video import decode_clip

    assert decode_clip(str(videos / "01" / "1"), 8, 16).frames.shape == (8, 16, 16, 3)  # frame folder decodes


def test_restricted_unpickler_refuses_code(tmp_path, realdata):
    import pickle

    import os

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UnsafePickleError, match=r"refusing to load \w+\.system"):
        load(path)
    assert not (tmp_path / "pwned").exists()
    assert len(load(realdata / "annotations/finediving/train_split.pkl")) == 2251


def test_star_official_and_website_formats(realdata, tmp_path):
    ann = tmp_path / "star"
    shutil.copytree(realdata / "annotations/star/STAR_classes", ann / "STAR_classes")
    shutil.copy(realdata / "annotations/star/STAR_sample_question__official_format.json", ann / "STAR_val.json")
    videos = tmp_path / "charades"
    videos.mkdir()
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", videos / "WBS4I.mp4")  # 10 s
    report = prepare("star", ann, videos, tmp_path / "star.parquet")
    df = no_leaks(tmp_path / "star.parquet").set_index("id")
    qa = df.loc["Interaction_T1_3772"]
    assert json.loads(qa.labels) == {"answer": "The closet/cabinet."} and qa.question == "Which object was closed by the person?"
    assert qa.start == 8.9 and qa.end == 10.0  # clipped to the video
    when = json.loads(df.loc["Interaction_T1_3772:when:a086", "labels"])["when"]
    assert 0 <= when[0] < when[1] <= 1
    box = [i for i in df.index if ":box:" in i]
    assert len(box) == 1 and json.loads(df.loc[box[0], "verifiers"]) == {"box": "bbox"}
    assert report["skipped"] == 0
    web = prepare("star", realdata / "annotations/star/homepage_selected_examples_keyframes_dict.json", videos,
                  tmp_path / "web.parquet")
    assert web["skipped"] == 24 and set(web["skipped_by_reason"]) == {"video not found"}  # answers were found


def test_ssv2_template_class_and_sentence(realdata, tmp_path):
    videos = tmp_path / "ssv2"
    videos.mkdir()
    shutil.copy(realdata / "videos" / "ssv2_closing_something__human2bot_task5_0.webm", videos / "74225.webm")
    report = prepare("ssv2", realdata / "annotations/ssv2", videos, tmp_path / "s.parquet")
    df = no_leaks(tmp_path / "s.parquet")
    assert len(df) == 1 and json.loads(df.labels[0]) == {
        "action": "Spinning something that quickly stops spinning",
        "caption": "spinning cube that quickly stops spinning"}
    assert report["skipped_by_reason"] == {"no label": 200, "video not found": 199}


def test_table_csv_and_jsonl_with_bad_rows(realdata, tmp_path):
    videos = realdata / "videos"
    csv = tmp_path / "mine.csv"
    csv.write_text("id,video,label,start,end\n"
                   "a,k400_arm_wrestling__mmaction2_demo.mp4,arm wrestling,,\n"
                   "b,nope.mp4,cooking,,\n"
                   "c,kinetics_flipping_pancake__decord.mkv,flipping pancake,5,2\n"
                   "d,kinetics_flipping_pancake__decord.mkv,,,\n")
    report = prepare("table", csv, videos, tmp_path / "t.parquet")
    assert report["rows"] == 1
    why = skipped(report)
    assert "video not found" in why["b"] and "end 2.0 <= start 5.0" in why["c"] and "neither 'label'" in why["d"]
    jsonl = tmp_path / "mine.jsonl"
    jsonl.write_text(
        json.dumps({"video": "k400_arm_wrestling__mmaction2_demo.mp4", "labels": {"s": 80.5}, "verifiers": {"s": "float"}})
        + "\n{broken\n"
        + json.dumps({"video": "k400_arm_wrestling__mmaction2_demo.mp4", "labels": {"b": [1, 2]}, "verifiers": {"b": "bbox"}})
        + "\n")
    report = prepare("table", jsonl, videos, tmp_path / "j.parquet")
    df = pd.read_parquet(tmp_path / "j.parquet")
    assert list(df.id) == ["mine:1"] and df.question[0] in prompts.TEMPLATES["float"]
    why = skipped(report)
    assert "not valid JSON" in why["mine:2"] and "bbox label" in why["mine:3"]


def test_user_templates_and_leak_check(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text("class: ['Which sport is played here?']\n")
    templates = prompts.load_templates(str(path))
    assert templates["class"] == ["Which sport is played here?"] and templates["float"] == prompts.TEMPLATES["float"]
    assert prompts.leaked_words("Is he washing his feet?", {"a": "washing feet"}, {"a": "class"}) == ["feet", "washing"]
    assert len(prompts.TEMPLATES["class"]) >= 50
    for kind, family in prompts.TEMPLATES.items():
        assert len(set(family)) == len(family), kind


def test_questions_avoid_the_label_words_instead_of_losing_the_row():
    avoid = ({"a": "doing laundry"}, {"a": "class"})
    picked = {prompts.question(f"row{i}", "class", avoid=avoid) for i in range(300)}
    assert len(picked) > 30 and not any("doing" in q.lower() for q in picked)
    assert prompts.question("x", "class") == prompts.question("x", "class")  # seeded


def test_the_paper_s_test_splits_from_the_real_annotation_files_with_stable_digests(realdata, tmp_path):
    """``--split test``: STAR's STAR_val.json, FineDiving's test_split.pkl and Kinetics' validation set, with the
    reference builders' items, seeded; two builds give the same ids and the same set digest."""
    from vstar_ray.prepare.safe_pickle import load as load_pickle

    star_ann = tmp_path / "star"
    shutil.copytree(realdata / "annotations/star/STAR_classes", star_ann / "STAR_classes")
    shutil.copy(realdata / "annotations/star/STAR_sample_question__official_format.json", star_ann / "STAR_val.json")
    shutil.copy(realdata / "annotations/star/STAR_sample_question__official_format.json", star_ann / "STAR_train.json")
    charades = tmp_path / "charades"
    charades.mkdir()
    shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", charades / "WBS4I.mp4")
    dives = tmp_path / "dives"
    test_keys = load_pickle(realdata / "annotations/finediving/test_split.pkl")[:3]
    for event, number in test_keys:
        (dives / event / str(number)).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(dives / event / str(number) / f"{i:05d}.jpg")
    clips = tmp_path / "k700"
    clips.mkdir()
    for name in ("---QUuC4vJs_000084_000094", "-0XtezGo2MM_000283_000293", "--GkrdYZ9Tc_000000_000010"):
        shutil.copy(realdata / "videos" / "k400_arm_wrestling__mmaction2_demo.mp4", clips / f"{name}.mp4")
    builds = {"star": (star_ann, charades), "finediving": (realdata / "annotations/finediving", dives),
              "kinetics700": (realdata / "annotations/kinetics/k700_validate.head200.csv", clips)}
    digests = {}
    for source, (annotations, videos) in builds.items():
        for n in (1, 2):
            out = tmp_path / f"{source}_{n}" / "test.parquet"
            report = prepare(source, annotations, videos, out, split="test", size=2 if source == "kinetics700" else 0)
            assert report["items"] == "paper" and report["rows"] > 0, report
            assert (out.with_name("test.sha256")).read_text().startswith(report["set_sha256"])
            digests.setdefault(source, []).append((report["set_sha256"], out.with_name("test.ids.txt").read_text()))
        assert digests[source][0] == digests[source][1], source
    star = no_leaks(tmp_path / "star_1" / "test.parquet").set_index("id")
    assert set(star.index) == {f"Interaction_T1_3772:{k}" for k in ("qa", "actions", "when", "when_qa", "object",
                                                                       "compare")}
    assert set(star["split"]) == {"val"}  # only STAR_val.json
    assert json.loads(star.loc["Interaction_T1_3772:qa", "verifiers"]) == {"answer": "sentence"}
    assert star.loc["Interaction_T1_3772:qa", "start"] == 8.9 and np.isnan(star.loc["Interaction_T1_3772:when", "start"])
    when = json.loads(star.loc["Interaction_T1_3772:when", "labels"])["when"]
    assert 0.9 < when[0] < when[1] <= 1.0  # situations from 9.6 s of a clip cut at 10 s (the substitute video)
    compare = json.loads(star.loc["Interaction_T1_3772:compare", "verifiers"])
    assert compare == {"first_object": "class", "second_object": "class", "same": "same_or_not"}
    dive = no_leaks(tmp_path / "finediving_1" / "test.parquet")
    assert set(dive["split"]) == {"test"} and len({i.split(":")[0] for i in dive["id"]}) == 3
    first = f"{test_keys[0][0]}_{test_keys[0][1]}"
    kinds = {i.split(":")[1] for i in dive["id"] if i.startswith(first + ":")}
    assert kinds <= {"after", "before", "sequence", "aqa", "score"} and {"sequence", "aqa", "score"} <= kinds
    kinetics = pd.read_parquet(tmp_path / "kinetics700_1" / "test.parquet")
    assert len(kinetics) == 2 and set(kinetics["split"]) == {"validate"}  # a seeded subset of the 3 clips
    other_seed = prepare("kinetics700", builds["kinetics700"][0], clips, tmp_path / "k_seed1.parquet", split="test",
                         size=2, seed=1)
    assert other_seed["rows"] == 2

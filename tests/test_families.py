"""Every supported video-LMM family, as a tiny random-weight model built from its own config class, processor
class and a hub-shaped chat template (``tests/helpers/tiny_families.py``): what the loss trains, long samples, frame times,
LoRA targets and generation in process (fast); a real ``vstar run`` cycle with FSDP2, a LoRA finetune and reloading
both checkpoints on a local Ray cluster (slow)."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from tests.helpers import tiny_families
from vstar_ray import models
from vstar_ray.families import FAMILIES
from vstar_ray.data.manifest import write_manifest

FAMILY_IDS = list(tiny_families.FAMILIES)
META = models.video_metadata(30.0, [18, 56, 93, 131, 168, 206, 243, 281], 300)  # 8 frames of a 10 s clip at 30 fps
PROMPTS = ["Question: What is happening? Can you explain step-by-step?", "Question: Describe the clip."]
ANSWERS = ["Two people grip hands. That is arm wrestling.", "A red disc appears at the end."]


def test_the_family_table_and_the_test_models_cover_the_same_families():
    assert set(FAMILY_IDS) == set(FAMILIES)


@pytest.fixture(scope="session")
def family_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("families"))


@pytest.fixture(scope="session")
def loaded(family_root):
    """family -> (model, processor), each loaded back through from_pretrained."""
    cache = {}

    def get(family):
        if family not in cache:
            path = tiny_families.built(family, family_root)
            cache[family] = (models.load_model(str(path)).eval(), models.load_processor(str(path)))
        return cache[family]

    return get


def clips(family, n=2, seed=0):
    size = tiny_families.TEST_FRAME_SIZE[family]
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (8, size, size, 3), dtype=np.uint8) for _ in range(n)]


def trained_text(processor, batch, row):
    labels = batch.inputs["labels"][row]
    return processor.tokenizer.decode(labels[labels != models.IGNORE_INDEX])


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_the_loss_covers_the_answer_and_its_end_of_turn_token(family, loaded):
    """USER/ASSISTANT templates write nothing after an answer: the tokenizer's eos is trained there instead."""
    model, processor = loaded(family)
    fmt = models.chat_format(processor)
    batch = models.training_batch(processor, clips(family), PROMPTS, ANSWERS, 4096, [META, META])
    for row, answer in enumerate(ANSWERS):
        labels = batch.inputs["labels"][row]
        kept = labels[labels != models.IGNORE_INDEX]
        assert trained_text(processor, batch, row) == fmt.answer_prefix + answer + fmt.answer_suffix
        assert fmt.end_of_turn_id in kept.tolist()
        assert kept.tolist().index(fmt.end_of_turn_id) >= len(kept) - 2  # the last token, or before a newline
    assert fmt.end_of_turn_id in models.stop_token_ids(model, processor)
    assert batch.truncated == batch.too_long == 0


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_a_long_sample_is_cut_in_its_answer_never_in_its_prompt_or_video(family, loaded):
    model, processor = loaded(family)
    frames = clips(family)
    whole = models.training_batch(processor, frames, PROMPTS, ANSWERS, 4096, [META, META])
    prompt_len = int((whole.inputs["labels"][0] == models.IGNORE_INDEX).sum()
                     - (whole.inputs["attention_mask"][0] == 0).sum())
    # room for 3 answer tokens of the first sample: its answer is cut, the video and prompt stay whole
    cut = models.training_batch(processor, frames, PROMPTS, ANSWERS, prompt_len + 3, [META, META])
    assert cut.inputs["input_ids"].shape[1] == prompt_len + 3 and cut.truncated >= 1 and cut.too_long == 0
    assert torch.equal(cut.inputs["input_ids"][0, :prompt_len], whole.inputs["input_ids"][0, :prompt_len])
    assert int((cut.inputs["labels"][0] != models.IGNORE_INDEX).sum()) == 3
    loss = model(**cut.inputs, num_items_in_batch=torch.tensor(cut.label_tokens)).loss
    assert torch.isfinite(loss)
    # a sample whose prompt alone does not fit is left out, the others train
    short = models.training_batch(processor, frames, ["Q?", PROMPTS[0] + " Think carefully." * 20], ANSWERS,
                                  prompt_len + 1, [META, META])
    assert short.too_long == 1 and short.inputs["input_ids"].shape[0] == 1 and short.label_tokens > 0
    assert torch.isfinite(model(**short.inputs, num_items_in_batch=torch.tensor(short.label_tokens)).loss)
    # nothing fits: one sample still runs with no label (every FSDP rank takes the step), and the loss is 0, not NaN
    none = models.training_batch(processor, frames, PROMPTS, ANSWERS, 4, [META, META])
    assert none.too_long == 2 and none.label_tokens == 0 and none.inputs["input_ids"].shape[0] == 1
    assert float(model(**none.inputs, num_items_in_batch=torch.tensor(1)).loss) == 0.0


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_the_clip_s_frame_times_reach_the_processor(family, loaded):
    """Qwen2.5-VL's temporal positions use the clip's sampled fps; Qwen3-VL and SmolVLM2 write its frame times
    into the prompt (not those of a default fps); the other families take no timing."""
    _, processor = loaded(family)
    slow = models.video_metadata(2.0, [0, 10, 20, 30, 40, 50, 60, 70], 80)  # one frame every 5 s
    texts = [models.prompt_text(processor, "Q?")]
    fast_inputs = models._process(processor, texts, clips(family, 1), [META], "right")
    slow_inputs = models._process(processor, texts, clips(family, 1), [slow], "right")
    kind = FAMILIES[family].frame_times
    if kind == "positions":
        sampled_fps = 8 / 300 * 30.0
        assert fast_inputs["second_per_grid_ts"][0] == pytest.approx(2 / sampled_fps)
        assert slow_inputs["second_per_grid_ts"][0] == pytest.approx(10.0)
    decoded = [processor.tokenizer.decode(x["input_ids"][0]) for x in (fast_inputs, slow_inputs)]
    if kind == "prompt":
        assert decoded[0] != decoded[1]
        stamp = {"qwen3_vl": "<32.5 seconds>", "smolvlm": "Frame from 00:35"}[family]
        assert stamp in decoded[1] and stamp not in decoded[0]  # the 8th frame of the slow clip is at 35 s
    else:
        assert decoded[0] == decoded[1]


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_lora_adapts_the_language_model_only_unless_asked(family, loaded):
    from vstar_ray.training.weights import lora_targets

    model, _ = loaded(family)
    suffixes = ["q_proj", "k_proj", "v_proj", "o_proj"]
    (decoder,) = [name for name, module in model.named_modules() if module is model.get_decoder()]
    language = lora_targets(model, suffixes, vision_tower=False)
    assert language and all(name.startswith(decoder + ".") for name in language)
    everything = lora_targets(model, suffixes, vision_tower=True)
    assert set(language) <= set(everything)


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_batched_generation_equals_one_clip_at_a_time(family, loaded):
    """Left padding, per-clip timing and the video token run stay aligned in a batch."""
    model, processor = loaded(family)
    frames = clips(family)
    batched = models.generate(model, processor, frames, PROMPTS, 6, False, 1.0, [META, META])
    single = [models.generate(model, processor, [f], [p], 6, False, 1.0, [META])[0] for f, p in zip(frames, PROMPTS)]
    assert batched == single


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_fsdp2_shards_every_transformer_block_of_the_family(family, loaded):
    """What ``training.step.shard`` wraps with ``fully_shard``: the blocks the model declares unsplittable. Every
    family names blocks it has, in its language model and its vision tower."""
    model, _ = loaded(family)
    names = set(model._no_split_modules or [])
    blocks = [name for name, module in model.named_modules() if type(module).__name__ in names]
    (decoder,) = [name for name, module in model.named_modules() if module is model.get_decoder()]
    assert any(b.startswith(decoder + ".") for b in blocks), (family, names)
    assert any(not b.startswith(decoder + ".") for b in blocks), (family, names)  # the vision tower's too


def assert_a_language_model_adapter(family: str, seed: str, adapter) -> None:
    """``adapter`` records ``seed`` as its base, reloads merged through from_pretrained with only language-model
    weights changed, and the merged model generates."""
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == seed
    seed_weights = dict(models.load_model(seed).named_parameters())
    adapted = models.load_model(str(adapter))
    assert not any("lora" in name for name, _ in adapted.named_parameters())  # merged
    changed = [n for n, p in adapted.named_parameters() if not torch.equal(p, seed_weights[n])]
    (decoder,) = [name for name, module in adapted.named_modules() if module is adapted.get_decoder()]
    assert changed and all(n.startswith(decoder + ".") for n in changed)  # the language model only
    processor = models.load_processor(str(adapter))
    assert len(models.generate(adapted, processor, clips(family, 1), PROMPTS[:1], 4, False, 1.0, [META])) == 1


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_a_lora_step_trains_the_language_model_and_reloads(family, family_root, tmp_path):
    """What a LoRA finetune does on each worker, in process: peft wraps the family's language model
    (``training.weights``), one optimizer step (``training.step``) moves the adapter, and the saved adapter
    reloads through from_pretrained (Ray Train around it: qwen2_vl's slow cycle)."""
    from vstar_ray.config import load_config
    from vstar_ray.training.step import step
    from vstar_ray.training.weights import load_weights

    seed = str(tiny_families.built(family, family_root))
    cfg = load_config(None, ["train.lora=true", "train.lora_r=4"])
    torch.manual_seed(0)
    model = load_weights(cfg, seed, seed, "cpu", "float32", resuming=False)
    processor = models.load_processor(seed)
    batch = models.training_batch(processor, clips(family), PROMPTS, ANSWERS, 4096, [META, META])
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    loss = step(model, [batch], optimizer, 1.0, torch.device("cpu"), "fp32")
    assert np.isfinite(loss)
    model.save_pretrained(tmp_path / "adapter")
    assert_a_language_model_adapter(family, seed, tmp_path / "adapter")


def test_a_lora_cycle_that_continues_keeps_the_earlier_cycles(loaded, family_root, tmp_path):
    """``train.restart_from_pretrained: false`` with LoRA: cycle 2's adapter records cycle 1's adapter as its base,
    and loading it merges pretrained + adapter 1 + adapter 2."""
    from vstar_ray.config import load_config
    from vstar_ray.training.weights import load_weights

    pretrained = str(tiny_families.built("qwen2_vl", family_root))
    cfg = load_config(None, ["train.lora=true", "train.lora_r=4"])

    def train_one(base: str, out, seed: int) -> str:
        model = load_weights(cfg, base, base, "cpu", "float32", resuming=False)
        torch.manual_seed(seed)
        for name, p in model.named_parameters():
            if "lora_B" in name:  # a "finetune": any non-zero update
                torch.nn.init.normal_(p, std=0.05)
        model.save_pretrained(out)
        return str(out)

    first = train_one(pretrained, tmp_path / "cycle_1", 1)
    second = train_one(first, tmp_path / "cycle_2", 2)
    assert json.loads((tmp_path / "cycle_2" / "adapter_config.json").read_text())["base_model_name_or_path"] == first
    assert models.adapter_chain(second) == (pretrained, [first, second])
    merged = dict(models.load_model(second).named_parameters())
    from peft import PeftModel

    only_second = PeftModel.from_pretrained(models.load_model(pretrained), second).merge_and_unload()
    expected = PeftModel.from_pretrained(models.load_model(first), second).merge_and_unload()
    differs = [n for n, p in only_second.named_parameters() if not torch.equal(p, merged[n])]
    assert differs  # adapter 2 alone on the pretrained model loses cycle 1's change
    assert all(torch.allclose(p, merged[n]) for n, p in expected.named_parameters())
    assert models.load_processor(second).tokenizer is not None  # the processor comes from the chain's base


def test_the_processor_of_a_lora_folder_without_one_comes_from_its_base(family_root, tmp_path):
    import shutil

    pretrained = str(tiny_families.built("smolvlm", family_root))
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": pretrained}))
    assert type(models.load_processor(str(tmp_path / "adapter"))).__name__ == "SmolVLMProcessor"
    shutil.copy(tmp_path / "adapter" / "adapter_config.json", tmp_path / "loop.json")
    (tmp_path / "adapter" / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(tmp_path / "adapter")}))
    with pytest.raises(ValueError, match="loops"):
        models.load_processor(str(tmp_path / "adapter"))


# ---- slow: a real run per family ----

REAL_VIDEOS = [("k400_arm_wrestling__mmaction2_demo.mp4", "arm wrestling"),
               ("kinetics_flipping_pancake__decord.mkv", "flipping pancake"),
               ("ssv2_closing_something__human2bot_task5_0.webm", "closing a drawer"),
               ("ucf101_like_apply_eye_makeup__mmaction2_test.avi", "applying eye makeup")]


@pytest.fixture(scope="module")
def real_manifests(realdata, tmp_path_factory):
    """Four real videos (mp4, mkv, VP9 webm, avi) with class labels; the held-out set is two of them."""
    work = tmp_path_factory.mktemp("family_data")
    rows = [{"id": f"v{i}", "video": str(realdata / "videos" / name), "source": "real", "split": "train",
             "labels": {"action": label}, "verifiers": {"action": "class"},
             "question": "What is the person in the video doing?"} for i, (name, label) in enumerate(REAL_VIDEOS)]
    write_manifest(rows, work / "train.parquet")
    write_manifest(rows[:2], work / "heldout.parquet")
    return work


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILY_IDS)
def test_a_family_runs_a_cycle_and_its_checkpoints_reload(family, family_root, real_manifests, ray_local, tmp_path):
    """``vstar run``: baseline eval, a generation pass, a finetune of the whole model on every direct answer (a random
    model verifies none) and the held-out eval of the new checkpoint; then a LoRA finetune of the same answers. Both
    checkpoints reload through from_pretrained and differ from the seed. Qwen2-VL (the demo's family) generates on 2
    actors, trains on 2 workers with FSDP2, and also takes a LoRA finetune on Ray Train; the others use one of each
    (what FSDP2 shards of each family, and a LoRA step, save and reload of each, are checked in process, fast)."""
    from vstar_ray.cli import main
    from vstar_ray.config import load_config
    from vstar_ray.training.finetune import finetune

    seed = str(tiny_families.built(family, family_root))
    overrides = [f"model.path={seed}", f"data.train_manifest={real_manifests}/train.parquet",
                 f"data.eval_manifest={real_manifests}/heldout.parquet", "demo_kit=", "cycles=1",
                 "train_on=unfiltered", "rationalize=false", f"data.frame_size={tiny_families.TEST_FRAME_SIZE[family]}",
                 "data.decode_batch_size=2", "generate.batch_size=2", "generate.max_new_tokens=8", "train.epochs=1",
                 "train.batch_size=1", "train.lr=1e-3", "train.max_length=512",
                 f"train.num_workers={2 if family == 'qwen2_vl' else 1}",
                 f"generate.max_actors={2 if family == 'qwen2_vl' else 1}"]
    args = ["run", "--config", "configs/demo.yaml", "--out", str(tmp_path / "run")]
    for item in overrides:
        args += ["--set", item]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    (cycle,) = metrics["cycles"]
    assert cycle["generated"] == 4 and cycle["failed_videos"] == 0
    assert cycle["train"]["steps"] == (2 if family == "qwen2_vl" else 4) and cycle["train"]["answers_truncated"] == 0
    assert set(metrics["baseline"]["eval"]["by_type"]) == {"class"}
    evaluated = pq.read_table(tmp_path / "run" / "cycle_1" / "eval").to_pylist()
    assert len(evaluated) == 2 and all(not r["error"] for r in evaluated)

    seed_weights = dict(models.load_model(seed).named_parameters())
    full = models.load_model(str(tmp_path / "run" / "cycle_1" / "checkpoint"))
    assert any(not torch.equal(p, seed_weights[n]) for n, p in full.named_parameters())
    models.load_processor(str(tmp_path / "run" / "cycle_1" / "checkpoint"))

    if family != "qwen2_vl":  # every family's LoRA step, save and reload: test_a_lora_step_... (fast)
        return
    cfg = load_config("configs/demo.yaml", overrides + ["train.lora=true"])
    finetune(cfg, tmp_path / "run" / "cycle_1" / "generated", cfg.data.train_manifest[0].manifest, seed, tmp_path / "lora",
             tmp_path / "ray_train", final_cycle=False, name="lora")
    assert_a_language_model_adapter(family, seed, tmp_path / "lora")

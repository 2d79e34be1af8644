"""The model card and the dataset card of an export, written from the run's own records (``RunRecord``, its
config); every figure in them is one the run measured."""

from __future__ import annotations

import statistics
from collections import Counter

from vstar_ray.export.run_folder import Run

# what each label source's data may be used for: its own terms apply to anything trained on it
LICENCES = {
    "kinetics": "Kinetics annotations: CC BY 4.0 (DeepMind); the videos belong to their YouTube uploaders.",
    "star": "STAR: the terms of star.csail.mit.edu; its videos are Charades (non-commercial research use).",
    "finediving": "FineDiving: use governed by its release agreement (github xujinglin/FineDiving).",
    "ssv2": "Something-Something v2: the Qualcomm licence (non-commercial research).",
    "demo": "vstar-ray's synthetic demo videos: generated, no third-party rights.",
}


def licence(source: str) -> str:
    for key, text in LICENCES.items():
        if source.lower().startswith(key):
            return text
    return f"{source or '(unnamed source)'}: check the terms of this dataset before sharing."


def _sources(run: Run) -> list[str]:
    return sorted({s for c in run.record.cycles for s in c.by_source} | set(run.record.baseline.by_source()))


def _accuracy_table(run: Run) -> list[str]:
    lines = ["| model | held-out accuracy | yield |", "|---|---|---|"]
    lines.append(f"| seed | {run.record.baseline.accuracy:.3f} | |")
    for c in run.record.cycles:
        lines.append(f"| cycle {c.cycle} | {c.eval_accuracy:.3f} | {c.yield_:.2f} |")
    return lines


def _benchmark_table(run: Run) -> list[str]:
    labels = sorted({label for _, ev in run.record.evaluations() for label in ev.benchmarks})
    if not labels and not run.record.baseline.judged:
        return []
    lines = ["", "Judged by an LLM (the run's `results.json` name the judge):", "",
             "| model | " + " | ".join(["held-out Accuracy / Score"] * bool(run.record.baseline.judged) + labels) + " |",
             "|---|" + "---|" * (bool(run.record.baseline.judged) + len(labels))]
    for name, ev in run.record.evaluations():
        cells = []
        if run.record.baseline.judged:
            o = (ev.judged or {}).get("overall")
            cells.append(f"{100 * o['accuracy']:.1f} / {o['score']:.2f}" if o else "")
        for label in labels:
            b = ev.benchmarks.get(label)
            cells.append(", ".join(f"{k} {v:.3f}" for k, v in b["figures"].items()) if b else "")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def model_card(run: Run, k: int, base: str, adapters: int, dtype: str) -> str:
    cfg, t = run.config, run.config.get("train", {})
    cycle = next(c for c in run.record.cycles if c.cycle == k)
    how = (f"LoRA (r={t.get('lora_r')}, alpha={t.get('lora_alpha')}), {adapters} adapter(s) merged into the base"
           if t.get("lora") else "full finetune")
    lines = [f"# Video-STaR: {base}, cycle {k}", "",
             f"A video LMM self-trained with Video-STaR (Zohar et al., ICLR 2025) by vstar-ray, from `{base}`.", "",
             "## Method and settings", "",
             f"- {len(run.record.cycles)} cycle(s) run; this is cycle {k} "
             f"({'restarting from the pretrained model every cycle' if t.get('restart_from_pretrained', True) else 'continuing from the previous cycle'}).",
             f"- Training: {how}; {t.get('epochs')} epoch(s) per cycle, lr {t.get('lr')}, batch {t.get('batch_size')} per "
             f"worker, prompt `{t.get('prompt', 'answer_prompt')}`; trained on `{cfg.get('train_on', 'verified')}` answers.",
             f"- Frames: {cfg.get('data', {}).get('num_frames')} per clip at {cfg.get('data', {}).get('frame_size')} px.",
             f"- Weights saved in {dtype}.", "", "## Data", "",
             "| source | videos | answers | kept direct | kept rationalized | yield |", "|---|---|---|---|---|---|"]
    from vstar_ray.results import Counts

    for source, counts in sorted(cycle.by_source.items()):
        c = Counts.from_json(counts)
        lines.append(f"| {source or '(none)'} | {c.videos} | {c.answers} | {c.kept_direct} | {c.kept_rationalized} | "
                     f"{c.yield_:.2f} |")
    lines += ["", f"({cycle.train.get('samples')} training samples in cycle {k}.)", "", "## Evaluation", ""]
    lines += _accuracy_table(run) + _benchmark_table(run)
    lines += ["", "Held-out accuracy: the share of held-out clips whose greedy answer passes vstar-ray's parser-verifier.",
              "", "## How to load", "", "```python",
              "from transformers import AutoModelForImageTextToText, AutoProcessor",
              "model = AutoModelForImageTextToText.from_pretrained(PATH)",
              "processor = AutoProcessor.from_pretrained(PATH)  # the chat template is in the processor",
              "```", "", "or `vllm serve PATH`, or lmms-eval: `--model <family> --model_args pretrained=PATH`.", "",
              "## Intended use and limitations", "",
              "Research on video understanding and self-training. The model learnt from answers it generated itself and "
              "that a rule-based verifier accepted: it can state wrong reasoning that happens to contain the label. "
              "It inherits the limitations and licence of its base model, and the terms of the datasets it was "
              "trained on apply:", ""]
    lines += [f"- {licence(s)}" for s in _sources(run)]
    return "\n".join(lines) + "\n"


def dataset_card(run: Run, per_cycle: dict[int, list[dict]], video_root: str) -> str:
    rows = [r for rs in per_cycle.values() for r in rs]
    words = [len(r["answer"].split()) for r in rows]
    lines = ["# Video-STaR instruction data", "",
             f"Chain-of-thought video instruction data generated by a Video-STaR run of vstar-ray from "
             f"`{run.config.get('model', {}).get('path', '')}` and labeled videos: {len(rows)} answers from cycle(s) "
             f"{', '.join(map(str, per_cycle))}. Load it with `datasets.load_dataset(\"parquet\", data_dir=FOLDER)`; "
             f"`__llava/train.json` holds the same rows as LLaVA conversations.", "", "## Counts", "",
             "| cycle | answers | direct | rationalized | yield of the cycle |", "|---|---|---|---|---|"]
    yields = {c.cycle: c.yield_ for c in run.record.cycles}
    for k, rs in per_cycle.items():
        kinds = Counter(r["kept_from"] for r in rs)
        lines.append(f"| {k} | {len(rs)} | {kinds['direct']} | {kinds['rationalized']} | {yields.get(k, 0):.2f} |")
    lines += ["", "| source | answers |", "|---|---|"]
    lines += [f"| {s or '(none)'} | {n} |" for s, n in sorted(Counter(r["source"] for r in rows).items())]
    lines += ["", "| label type | answers |", "|---|---|"]
    lines += [f"| {t} | {n} |" for t, n in sorted(Counter(t for r in rows for t in r["label_types"]).items())]
    if words:
        lines += ["", f"Answer length: mean {statistics.mean(words):.1f} words, median {statistics.median(words):.0f}, "
                      f"max {max(words)}."]
    lines += ["", "## How the answers were kept", "",
              "Each video's labels were turned into a question; the model answered with step-by-step reasoning, and a "
              "parser-verifier kept the answers that contain every label (fuzzy class match, the final number within a "
              "tolerance, time ranges and boxes by IoU, sentences by embedding similarity). A failed answer was asked "
              "again with the label as a hint (`rationalized: true`) and kept if it then verified; the question in "
              "this data never carries the hint.", "", "## Videos", "",
              f"Videos are referenced, not included: `video` is relative to `{video_root}` on the machine that made "
              "this export (or a URI), with `start`/`end` in seconds for clip windows.", "",
              "## Licences", "", "The terms of each label source apply to this data:", ""]
    lines += [f"- {licence(s)}" for s in sorted({r['source'] for r in rows})]
    return "\n".join(lines) + "\n"

"""The config sections of evaluation: the benchmarks scored every cycle (``eval``) and the LLM judge (``judge``);
docs/evaluation.md explains them. ``config.Config`` holds them."""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from vstar_ray.config_types import SECTION, Bool, Int, Number, Text

BENCHMARKS = ("openqa", "videochatgpt", "tempcompass")


@dataclass(frozen=True, config=SECTION)
class BenchmarkSpec:
    """A judged benchmark scored on the seed and every cycle (docs/evaluation.md); files as each benchmark ships."""

    name: Literal["openqa", "videochatgpt", "tempcompass"]
    # openqa: the Video-ChatGPT-format test_q.json; videochatgpt: the folder with generic_qa.json, temporal_qa.json
    # and consistency_qa.json; tempcompass: the folder with multi-choice.json, yes_no.json, ... (and meta_info.json)
    questions: Annotated[Text, Field(min_length=1)]
    videos: Annotated[Text, Field(min_length=1)]  # the folder of the benchmark's videos, named as it names them
    answers: Text = ""  # openqa: test_a.json
    label: Text = ""  # the benchmark's name in reports and folders (msvd, msrvtt, ...); default: name
    tasks: Text = ""  # tempcompass: comma-separated subset of multi-choice,yes_no,caption_matching,captioning
    limit: Annotated[Int, Field(ge=0)] = 0  # at most this many questions (0: all)

    @property
    def title(self) -> str:
        return self.label or self.name


@dataclass(frozen=True, config=SECTION)
class EvalConfig:
    """What the seed model and every cycle are scored on: the held-out manifest, and ``benchmarks``."""

    # verifier: held-out answers are right when the parser-verifier accepts them; paper: the bare question is asked
    # and the judge decides against the labels rendered as text (Accuracy / Score), beside the verifier's accuracy
    protocol: Literal["verifier", "paper"] = "verifier"
    # the held-out prompt: question (the bare question, the paper's), answer_prompt (with the step-by-step
    # request), auto: question under protocol paper, answer_prompt under verifier
    prompt: Literal["auto", "question", "answer_prompt"] = "auto"
    max_new_tokens: Annotated[Int, Field(ge=0)] = 0  # tokens a held-out or benchmark answer may take; 0: generate's
    benchmarks: list[BenchmarkSpec] = field(default_factory=list)  # judged benchmarks, scored every cycle

    def __post_init__(self) -> None:
        titles = [b.title for b in self.benchmarks]
        if len(set(titles)) < len(titles):
            raise ValueError(f"benchmarks: two have the label {max(titles, key=titles.count)!r}; give each a label")


@dataclass(frozen=True, config=SECTION)
class JudgeConfig:
    """The LLM judge of the benchmarks and of the paper protocol (docs/evaluation.md)."""

    # openai: an OpenAI-compatible endpoint (vllm serve, SGLang, a hosted API); actors: a judge model on the
    # cluster's own actors; callable: a Python function
    backend: Literal["openai", "actors", "callable"] = "openai"
    base_url: Text = ""  # openai: e.g. http://localhost:8000/v1
    model: Text = ""  # openai: the served model's name; actors: a local folder or hub id
    api_key_env: Text = "OPENAI_API_KEY"  # the environment variable that holds the key (never put a key in a config)
    function: Text = ""  # callable: package.module:function (docs/evaluation.md)
    # original: the official scripts' sampling (temperature 1.0; reruns differ); empty: deterministic
    preset: Literal["", "original"] = ""
    temperature: Annotated[Number, Field(ge=0)] = 0.0
    max_tokens: Annotated[Int, Field(ge=1)] = 256
    seed: Int = 0
    concurrency: Annotated[Int, Field(ge=1)] = 8  # requests in flight at once
    timeout_s: Annotated[Number, Field(gt=0)] = 60.0  # per call
    retries: Annotated[Int, Field(ge=0)] = 3  # per item, with exponential backoff; then it counts as judge_failed
    backoff_s: Annotated[Number, Field(ge=0)] = 1.0
    cache: Bool = True  # replies are cached (re-scoring is exact and works offline); false: always ask
    cache_dir: Text = ""  # where; empty: ~/.cache/vstar-ray/judge (a shared path serves a whole cluster)
    # send each prompt's reply grammar as vLLM's structured_outputs (vllm serve), so any model's reply parses
    structured_outputs: Bool = False
    engine: Literal["hf", "vllm"] = "hf"  # actors: HF generate in the actor, or a vllm serve process it starts
    vllm_python: Text = ""  # actors with vllm: the Python of an environment with vLLM; empty: the actor's own
    actors: Annotated[Int, Field(ge=1)] = 1
    num_cpus: Annotated[Number, Field(gt=0)] = 1.0  # per judge actor
    num_gpus: Annotated[Number, Field(ge=0)] = 0.0  # per judge actor

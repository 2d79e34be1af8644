"""The default generation engine (``generate.engine: hf``): batched transformers ``generate``."""

from __future__ import annotations

import numpy as np
import torch

from vstar_ray import models


class HFEngine:
    """Batched transformers ``generate`` with left padding, one model per actor (``engines.Engine``)."""

    def __init__(self, model_path: str, dtype: str = "auto", trust_remote_code: bool = False):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = models.load_model(model_path, self.device, dtype, trust_remote_code).eval()
        self.processor = models.load_processor(model_path, trust_remote_code)

    def generate(self, frames: list[np.ndarray], prompts: list[str], max_new_tokens: int, do_sample: bool,
                 temperature: float, metadata: list[dict | None] | None = None) -> list[str]:
        return models.generate(self.model, self.processor, frames, prompts, max_new_tokens, do_sample, temperature,
                               metadata)

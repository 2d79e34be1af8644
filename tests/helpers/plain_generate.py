"""Greedy answers from an exported model folder with plain transformers, in a process where vstar_ray cannot be
imported (what any tool that loads a hub folder does).

    python plain_generate.py MODEL_DIR CLIPS.npz REQUESTS.json OUT.json
"""

import json
import sys

sys.modules["vstar_ray"] = None  # any import of vstar_ray fails here

import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import AutoModelForImageTextToText, AutoProcessor  # noqa: E402


def main(model_dir: str, clips: str, requests: str, out: str) -> None:
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    processor = AutoProcessor.from_pretrained(model_dir)
    frames = np.load(clips)
    answers = []
    for i, request in enumerate(json.loads(open(requests).read())):
        messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": request["prompt"]}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(text=[text], videos=[frames[f"clip{i}"]], video_metadata=[request["metadata"]],
                           do_sample_frames=False, return_tensors="pt")
        with torch.no_grad():
            output = model.generate(**inputs, max_new_tokens=request["max_new_tokens"], do_sample=False)
        answers.append(processor.batch_decode(output[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)[0]
                       .strip())
    json.dump(answers, open(out, "w"))


if __name__ == "__main__":
    main(*sys.argv[1:])

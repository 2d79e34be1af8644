"""Generation passes: one Ray Data chain per pass (decode, answer, verify, rationalize, commit), the run's
generator actors that serve every pass, and the engines they hold (HF ``generate``, vLLM, your own).

Owns: ``pipeline`` (a pass, resumable, with its watchdog), ``stages`` (the batch functions of a pass),
``pool`` (generator actors and their router), ``engines`` (what an actor runs). Imports ``data``,
``verify``, ``models``, ``prompts`` and ``results``; never training, evaluation or the run loop.
"""

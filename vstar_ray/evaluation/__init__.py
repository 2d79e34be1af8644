"""Scoring models: held-out QA with the verifier (``heldout``), TempCompass as its authors score it
(``tempcompass``) and the ablations of the algorithm (``ablations``).

Imports ``generation`` (to answer), ``data``, ``verify`` and ``results``. Only ``ablations`` imports the run
loop (it runs whole runs, one per variant); nothing else here does.
"""

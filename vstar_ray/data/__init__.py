"""Labeled clips as data: the manifest contract, several sources mixed into one run, and decoding clips into
frames (decord, PyAV fallback, in a child process killed on a timeout).

Owns: ``manifest`` (the parquet contract and its checks), ``sources`` (mixing a run's datasets), ``video``
(decoding), ``decode_worker`` (decoding with a time limit), ``decode`` (the decode stage every consumer uses),
``frame_cache`` (each clip decoded once per run). Imports only ``verify``, ``config`` and ``io`` of
vstar_ray; never generation, training, evaluation or the run loop.
"""

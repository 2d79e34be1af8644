"""What a user takes away from a run (``vstar export``): the model as a plain HF folder any tool loads (adapters
merged, processor, chat template, generation config and a model card: ``model``), and the generated
instruction data as a dataset release (parquet shards ``datasets`` loads, LLaVA JSON and a dataset card:
``data``). ``cards`` writes both cards from the run's own records.

Reads a finished run folder (``results.RunRecord``, ``state.json``, the cycles' folders); imports ``models``,
``results`` and ``io``; never generation, training or the run loop.
"""

"""Generation engines: what a generator actor holds to answer batches of clips (``hf_engine``: batched
transformers ``generate``; ``vllm_engine``: vLLM, in process or in an environment of its own)."""

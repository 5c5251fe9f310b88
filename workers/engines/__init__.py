"""Engines behind one `Engine` protocol: in-process vLLM, transformers+peft, remote OpenAI."""

"""The OpenAI-compatible API's side of the gateway: the translation between OpenAI's
chat format and sciserve's jobs.

- `presets.py`: model names (the base model and the strategy presets);
- `translate.py`: a chat request → a `SolveRequest`, a result → a chat completion;
- `stream.py`: a job's events → `chat.completion.chunk` server-sent events;
- `errors.py`: errors in OpenAI's body, for every /v1 route.

The wire models are in `contract/openai.py` and the routes in `routers/openai.py`.
"""

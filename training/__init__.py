"""The training loop: served traces become datasets, datasets become LoRA adapters.

Sits beside `evaluation/` above the services; it reads trace records (files) and uses
`contract/` and `adapters/` only, so a trainer never imports a worker.
"""

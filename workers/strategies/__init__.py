"""Inference-time strategies as stages: generate → refine → select (DESIGN §4)."""

"""LoRA adapters by role (`policy`, `asker`, `truster`) and the registry that maps them."""

"""System and explanation prompts (zh and en), loaded by name."""

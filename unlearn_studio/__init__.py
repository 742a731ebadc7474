"""Unlearn Studio: SAE-guided unlearning of entities from causal language models."""

__version__ = "0.1.0"

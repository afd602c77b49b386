"""Example applications that use Consentry, used by the demo and the end-to-end tests."""

from __future__ import annotations

from consentry_examples.example import Example, all_examples

__all__ = ["Example", "all_examples"]

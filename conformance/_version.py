"""The harness version, reported in every report."""

from __future__ import annotations

from typing import Final

__all__ = ["HARNESS_VERSION"]

HARNESS_VERSION: Final = "0.1.0"

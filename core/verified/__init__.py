"""Verified answers: people's answers to questions, served before retrieval with their mark."""

from __future__ import annotations

from core.verified.mark import verified_line
from core.verified.model import VerifiedAnswer
from core.verified.service import VerifiedAnswers

__all__ = ["VerifiedAnswer", "VerifiedAnswers", "verified_line"]

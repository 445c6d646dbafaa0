"""Transitional: the names stage now lives in bot/roster_match.py (label text -> roster student),
bot/ocr.py (NameReader) and bot/label_finder.py (labels found in pixels). These names stay importable
from here only for the modules being edited by others at the split (bot/stages.py, bot/session.py,
bot/label_memory.py, tests/test_pipeline.py, benchmarks/); delete this file once they import from those."""
from bot.label_finder import stroke_mask, tophat_side
from bot.ocr import NameReader, OcrError
from bot.roster_match import normalise, resolve
from bot.types import NameMatch

__all__ = ["NameMatch", "NameReader", "OcrError", "normalise", "resolve", "stroke_mask", "tophat_side"]

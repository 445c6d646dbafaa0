"""Display-name text -> roster student (DESIGN.md "Name resolution"): `normalise` strips what the
meeting app adds to a label, `resolve` matches it by student number, exact name or fuzzily. Pure
functions over strings."""
from __future__ import annotations

import re

from rapidfuzz import fuzz

from bot.config import NameSettings
from bot.roster import fold
from bot.types import NameMatch, Student

# --- normalise ------------------------------------------------------------------------------------

# Words that Zoom / Meet put in parentheses after a display name; pronouns are listed so that
# "(she/her)", "(they/them)" and "(Host, me)" all disappear but "(James)" (a nickname) stays.
_DECORATION_WORDS = {
    "host", "co-host", "cohost", "co host", "me", "guest", "you", "presenter", "presenting",
    "she", "her", "hers", "he", "him", "his", "they", "them", "theirs", "ze", "zir", "xe", "xem",
    "any", "all", "pronouns",
    # Korean Zoom: 호스트 (host), 공동 호스트 (co-host), 나 (me), 게스트 (guest)
    "호스트", "공동 호스트", "공동호스트", "나", "게스트",
}
_PAREN = re.compile(r"[(\[]([^()\[\]]*)[)\]]")
_ELLIPSIS = re.compile(r"(\.{2,}|…|\u22ef)\s*$")


def _is_decoration(inner: str) -> bool:
    parts = [p.strip() for p in re.split(r"[,/|]", inner.casefold()) if p.strip()]
    return bool(parts) and all(p in _DECORATION_WORDS for p in parts)


def _fix_ocr_token(tok: str) -> str:
    # A 0 in a word that is otherwise letters is an O misread ("N0via"); a token with any other
    # digit is a student number and stays as it is.
    digits = {ch for ch in tok if ch.isdigit()}
    if digits == {"0"} and sum(ch.isalpha() for ch in tok) >= 2:
        tok = tok.replace("0", "o")
    return tok


def normalise(text: str) -> str:
    """The comparison key of a display name (DESIGN.md "Name resolution" step 1).

    `  Rizky_Putri-Pratiwi (Host, me) 🎤` -> `rizky putri pratiwi`.
    """
    if not text:
        return ""
    # OCR reads a capital I in sans-serif fonts as a bar; in a name a bar is never meant.
    text = text.replace("|", "I").replace("¦", "I")
    text = _PAREN.sub(lambda m: " " if _is_decoration(m.group(1)) else m.group(0), text)
    text = fold(text)
    # Everything that is not a letter or digit (mic glyphs, emoji, brackets, OCR specks, the
    # separators _ - .) becomes a space; an apostrophe inside a word is dropped so that
    # "O'Hare" and "OHare" meet.
    text = re.sub(r"(?<=\w)['’`](?=\w)", "", text)
    text = re.sub(r"[\W_]+", " ", text)
    tokens = [_fix_ocr_token(t) for t in text.split()]
    return " ".join(tokens)


# --- resolve --------------------------------------------------------------------------------------

_ID_CONFUSIONS = str.maketrans({"o": "0", "i": "1", "l": "1", "|": "1"})
_STUDENT_NUMBER = re.compile(r"^(?=.*\d.*\d.*\d.*\d)[a-z0-9]+$")  # a token with >= 4 digits
_MIN_PREFIX = 5  # a cut-off name must keep at least this many characters to be matched on


def _id_key(text: str) -> str:
    # OCR confuses O/0 and I/l/1 inside IDs; compare IDs through the same confusion classes.
    return re.sub(r"[^0-9a-z]", "", fold(text).translate(_ID_CONFUSIONS))


def _find_id(text: str, roster: list[Student]) -> Student | None:
    """A roster student_id written as a token of the label (`G1A021044_Rizky ...`)."""
    raw = fold(text).translate(_ID_CONFUSIONS)
    hits = []
    for s in roster:
        key = _id_key(s.student_id)
        if len(key) < 4:
            continue  # too short to tell from ordinary text
        # The ID must start at a token boundary and not run on into more digits; what follows may
        # be a letter because OCR often drops the `_` between ID and name.
        if re.search(rf"(?<![0-9a-z]){re.escape(key)}(?![0-9])", raw):
            hits.append(s)
    return hits[0] if len(hits) == 1 else None


def _name_part(norm: str) -> str:
    """The label without student-number tokens (`20200759 yang yeji` -> `yang yeji`)."""
    return " ".join(t for t in norm.split() if not _STUDENT_NUMBER.match(t))


def _keys(s: Student) -> list[str]:
    """The student's name and aliases as compared with a label (student numbers left out too)."""
    keys = []
    for k in (normalise(s.name), *(normalise(a) for a in s.aliases)):
        k = _name_part(k) or k
        if k and k not in keys:
            keys.append(k)
    return keys


def resolve(text: str, roster: list[Student], settings: NameSettings) -> NameMatch:
    """A tile label -> the roster student it names, or student_id None (`unlabeled`)."""
    if not text or not roster:
        return NameMatch(text=text or "", student_id=None, method="none")
    hit = _find_id(text, roster)
    if hit is not None:
        return NameMatch(text=text, student_id=hit.student_id, method="id", score=100.0)

    truncated = bool(_ELLIPSIS.search(text.strip()))
    norm = _name_part(normalise(text))
    if not norm:
        return NameMatch(text=text, student_id=None, method="none")

    exact = {s.student_id for s in roster if norm in _keys(s)}
    if len(exact) == 1:
        return NameMatch(text=text, student_id=exact.pop(), method="exact", score=100.0)
    if len(exact) > 1:  # two students share this name or alias: guessing would accuse the wrong one
        return NameMatch(text=text, student_id=None, method="none", score=100.0)

    def ranked(label: str, keys_of) -> tuple[float, str | None, float]:
        scores = []
        for s in roster:
            best = 0.0
            for key in keys_of(s):
                score = fuzz.token_set_ratio(label, key)
                # A cut-off label ("Rizky Putri Pr...") is compared with the same length of the name.
                if (truncated or len(label) >= 8) and _MIN_PREFIX <= len(label) < len(key):
                    score = max(score, fuzz.ratio(label, key[:len(label)]))
                best = max(best, score)
            scores.append((best, s.student_id))
        scores.sort(reverse=True)
        return scores[0][0], scores[0][1], scores[1][0] if len(scores) > 1 else 0.0

    best, sid, second = ranked(norm, _keys)
    if best >= settings.fuzzy_min and best - second >= settings.fuzzy_lead:
        return NameMatch(text=text, student_id=sid, method="fuzzy", score=float(best))
    if len(norm.replace(" ", "")) >= _LOOKALIKE_MIN:
        # small text misread letter for look-alike letter ("Novio Evionti", "Moreto Aliona 3" at 7x7
        # tiles): compared once more with those letters made one, every student's name too, so two
        # names that differ only there tie and neither is taken
        lbest, lsid, lsecond = ranked(_lookalike(norm), lambda s: [_lookalike(k) for k in _keys(s)])
        if lbest >= settings.fuzzy_min and lbest - lsecond >= settings.fuzzy_lead:
            return NameMatch(text=text, student_id=lsid, method="lookalike", score=float(lbest))
    return NameMatch(text=text, student_id=None, method="none", score=float(best))


# letters the recogniser takes for one another on small text, each group made one letter
_LOOKALIKES = str.maketrans({"a": "o", "e": "c", "i": "l", "1": "l", "j": "l"})
_LOOKALIKE_MIN = 8  # letters a label needs before it is matched through look-alikes


def _lookalike(norm: str) -> str:
    return norm.replace("rn", "m").translate(_LOOKALIKES)

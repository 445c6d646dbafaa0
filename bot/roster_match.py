"""Display-name text -> roster student (DESIGN.md "Name resolution"): `normalise` strips what the
meeting app adds to a label, `resolve` matches it by student number, exact name or fuzzily. Pure
functions over strings."""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from rapidfuzz import fuzz

from bot.config import NameSettings
from bot.roster import fold
from bot.types import NameMatch, Student


@dataclass(frozen=True)
class MatchTuning:
    """Roster matching's tuning values, each with its reason (the fuzzy score and lead a match needs are
    settings: names.fuzzy_min, names.fuzzy_lead)."""
    o_letters: int = 2          # letters a token needs for a 0 in it to be an O misread ("N0via")
    number_digits: int = 4      # digits that make a token a student number, left out of the name compared
    min_id: int = 4             # characters an ID needs to be looked for in a label: shorter is ordinary text
    min_prefix: int = 5         # characters a cut-off label must keep to be matched on the name's start
    prefix_from: int = 8        # characters from which a label is matched on the name's start, "..." or not
    lookalike_min: int = 8      # letters a label needs before it is matched through look-alikes


MATCH_TUNING = MatchTuning()

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


def _fix_ocr_token(tok: str, t: MatchTuning = MATCH_TUNING) -> str:
    # A 0 in a word that is otherwise letters is an O misread ("N0via"); a token with any other
    # digit is a student number and stays as it is.
    digits = {ch for ch in tok if ch.isdigit()}
    if digits == {"0"} and sum(ch.isalpha() for ch in tok) >= t.o_letters:
        tok = tok.replace("0", "o")
    return tok


def normalise(text: str, t: MatchTuning = MATCH_TUNING) -> str:
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
    tokens = [_fix_ocr_token(tok, t) for tok in text.split()]
    return " ".join(tokens)


# --- resolve --------------------------------------------------------------------------------------

_ID_CONFUSIONS = str.maketrans({"o": "0", "i": "1", "l": "1", "|": "1"})


@functools.cache
def _student_number(digits: int) -> re.Pattern:
    """A token of letters and digits with at least `digits` digits."""
    return re.compile("^(?=" + r".*\d" * digits + r")[a-z0-9]+$")


def _id_key(text: str) -> str:
    # OCR confuses O/0 and I/l/1 inside IDs; compare IDs through the same confusion classes.
    return re.sub(r"[^0-9a-z]", "", fold(text).translate(_ID_CONFUSIONS))


def _find_id(text: str, roster: list[Student], t: MatchTuning = MATCH_TUNING) -> Student | None:
    """A roster student_id written as a token of the label (`G1A021044_Rizky ...`)."""
    raw = fold(text).translate(_ID_CONFUSIONS)
    hits = []
    for s in roster:
        key = _id_key(s.student_id)
        if len(key) < t.min_id:
            continue  # too short to tell from ordinary text
        # The ID must start at a token boundary and not run on into more digits; what follows may
        # be a letter because OCR often drops the `_` between ID and name.
        if re.search(rf"(?<![0-9a-z]){re.escape(key)}(?![0-9])", raw):
            hits.append(s)
    return hits[0] if len(hits) == 1 else None


def _name_part(norm: str, t: MatchTuning = MATCH_TUNING) -> str:
    """The label without student-number tokens (`20200759 yang yeji` -> `yang yeji`)."""
    number = _student_number(t.number_digits)
    return " ".join(tok for tok in norm.split() if not number.match(tok))


def _keys(s: Student, t: MatchTuning = MATCH_TUNING) -> list[str]:
    """The student's name and aliases as compared with a label (student numbers left out too)."""
    keys = []
    for k in (normalise(s.name, t), *(normalise(a, t) for a in s.aliases)):
        k = _name_part(k, t) or k
        if k and k not in keys:
            keys.append(k)
    return keys


def resolve(text: str, roster: list[Student], settings: NameSettings,
            tuning: MatchTuning = MATCH_TUNING) -> NameMatch:
    """A tile label -> the roster student it names, or student_id None (`unlabeled`)."""
    t = tuning
    if not text or not roster:
        return NameMatch(text=text or "", student_id=None, method="none")
    hit = _find_id(text, roster, t)
    if hit is not None:
        return NameMatch(text=text, student_id=hit.student_id, method="id", score=100.0)

    truncated = bool(_ELLIPSIS.search(text.strip()))
    norm = _name_part(normalise(text, t), t)
    if not norm:
        return NameMatch(text=text, student_id=None, method="none")

    exact = {s.student_id for s in roster if norm in _keys(s, t)}
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
                if (truncated or len(label) >= t.prefix_from) and t.min_prefix <= len(label) < len(key):
                    score = max(score, fuzz.ratio(label, key[:len(label)]))
                best = max(best, score)
            scores.append((best, s.student_id))
        scores.sort(reverse=True)
        return scores[0][0], scores[0][1], scores[1][0] if len(scores) > 1 else 0.0

    best, sid, second = ranked(norm, lambda s: _keys(s, t))
    if best >= settings.fuzzy_min and best - second >= settings.fuzzy_lead:
        return NameMatch(text=text, student_id=sid, method="fuzzy", score=float(best))
    if len(norm.replace(" ", "")) >= t.lookalike_min:
        # small text misread letter for look-alike letter ("Novio Evionti", "Moreto Aliona 3" at 7x7
        # tiles): compared once more with those letters made one, every student's name too, so two
        # names that differ only there tie and neither is taken
        lbest, lsid, lsecond = ranked(_lookalike(norm), lambda s: [_lookalike(k) for k in _keys(s, t)])
        if lbest >= settings.fuzzy_min and lbest - lsecond >= settings.fuzzy_lead:
            return NameMatch(text=text, student_id=lsid, method="lookalike", score=float(lbest))
    return NameMatch(text=text, student_id=None, method="none", score=float(best))


# letters the recogniser takes for one another on small text, each group made one letter
_LOOKALIKES = str.maketrans({"a": "o", "e": "c", "i": "l", "1": "l", "j": "l"})


def _lookalike(norm: str) -> str:
    return norm.replace("rn", "m").translate(_LOOKALIKES)

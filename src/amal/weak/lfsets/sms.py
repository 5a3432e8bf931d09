"""Hand-written labeling functions for the SMS Spam Collection (ham = 0, spam = 1).

The LFs encode what anyone who has received premium-rate SMS spam knows: spam announces prizes, asks you to
call an 09… number or text a keyword to a five-digit short code, quotes prices per message and legal small
print, and shouts in capitals; ham is chatty, short, lower-case, first-person and full of plans and
emoticons.

Honesty note: while writing these LFs only a development sample was read — the first 500 lines of
``SMSSpamCollection`` — to check the format and sanity-check ideas. No LF was scored on, or tuned against,
the remaining lines; use those for evaluation.

Every LF is a small, self-contained example of the :mod:`amal.weak.lf` API: :class:`~amal.weak.lf.KeywordLF`
and :class:`~amal.weak.lf.RegexLF` for vocabulary and patterns, ``@labeling_function`` for any other
heuristic, including vectorized LFs (``vectorized=True``, the whole list of texts at once) and continuous
LFs (``continuous=True``, returning ``(label, score)`` with a confidence in [0, 1]).
"""

from __future__ import annotations

import re

import numpy as np

from amal.weak.lf import ABSTAIN, KeywordLF, LabelingFunction, RegexLF, labeling_function

HAM, SPAM = 0, 1

_CALL_TO_ACTION = re.compile(r"\b(?:call|txt|text|reply|send|claim|click|visit|dial)\b", re.IGNORECASE)
_CASUAL = re.compile(r"\b(?:lol|haha\w*|lor|lar|leh|hmm+|ok|okay|k|kk|gonna|wanna|gotta|dun|wat|juz)\b|:\)|:-\)|:p",
                     re.IGNORECASE)


def _keyword_lfs() -> list[LabelingFunction]:
    return [
        # Prize draws are the classic SMS scam: "WINNER!", "£900 prize", "Bonus", "jackpot".
        KeywordLF("kw_prize", ["prize", "prizes", "winner", "winners", "jackpot", "bonus", "award", "awarded",
                               "congratulations", "congrats", "vouchers", "lottery", "cash prize"], label=SPAM),
        # Urgency and claiming: "URGENT! ... To claim call ... Valid 12 hours only".
        KeywordLF("kw_claim_urgent", ["claim", "urgent", "guaranteed", "expires", "final notice", "valid 12",
                                      "final attempt", "last chance", "selected to receive"], label=SPAM),
        # "Free" on its own is also chat ("call me when you're free"), so only the marketing phrases count.
        KeywordLF("kw_free_offer", ["free entry", "freemsg", "free msg", "free message", "freephone", "free call",
                                    "free text", "free texts", "free ringtone", "free camera", "free nokia",
                                    "free credits", "free gift", "free membership", "for free"], label=SPAM),
        # Subscription services tell you how to get out: "reply STOP", "to opt out", "unsubscribe".
        KeywordLF("kw_stop_optout", ["reply stop", "txt stop", "text stop", "send stop", "stop to end",
                                     "opt out", "optout", "2optout", "opt-out", "unsubscribe"], label=SPAM),
        # Mobile-operator marketing: ringtones, handset upgrades, "valued customer".
        KeywordLF("kw_mobile_offer", ["ringtone", "ringtones", "polyphonic", "camera phone", "mobile update",
                                      "latest colour", "line rental", "valued customer", "network customer",
                                      "customer service", "customer services", "upgrade", "wap"], label=SPAM),
        # Legal small print that only commercial messages carry.
        KeywordLF("kw_small_print", ["t&c", "t&cs", "t&c's", "tncs", "tscs", "tcs", "std txt rate", "po box",
                                     "pobox", "18+", "16+", "per msg", "per min", "ppm", "150p", "landline"],
                  label=SPAM),
        # Adult and dating come-ons sent by premium chat lines ("xxx" is left out: friends sign off with kisses).
        KeywordLF("kw_adult_dating", ["sexy", "horny", "naked", "dogging", "flirt", "dating service",
                                      "secret admirer", "dream partner", "chat svc"], label=SPAM),
        # Ham: chat shorthand and laughter that no advertiser writes.
        KeywordLF("kw_chat_slang", ["lol", "haha", "hahaha", "hehe", "lor", "lar", "leh", "hmm", "hmmm", "dun",
                                    "wat", "juz", "gonna", "wanna", "gotta", "nah", "yup", "ya", "okie", "ok",
                                    "k", "kk"], label=HAM),
        # Ham: everyday life — meals, home, work, school, sleep, meeting up.
        KeywordLF("kw_daily_life", ["lunch", "dinner", "breakfast", "home", "class", "office", "bed", "sleep",
                                    "sleeping", "shower", "bus", "meeting", "tomorrow", "tmr", "tonite", "later",
                                    "morning", "night", "lecture", "exam", "mom", "mum", "dad"], label=HAM),
        # Ham: affection and apology between people who know each other.
        KeywordLF("kw_affection", ["love you", "miss you", "sorry", "babe", "dear", "sweetheart", "hugs",
                                   "take care", "good night", "gud ni8", "thanks a lot"], label=HAM),
    ]


def _regex_lfs() -> list[LabelingFunction]:
    return [
        # UK phone numbers (premium 09…, freephone 08…, mobiles 07…): people rarely type full numbers to friends.
        RegexLF("re_phone_number", r"(?<!\d)0[789]\d{2}[ -]?\d{3}[ -]?\d{3,4}(?!\d)", label=SPAM),
        # Five-digit short codes: "text WIN to 80086", "Txt the word CLAIM to No: 81010".
        RegexLF("re_short_code", r"\b(?:to|on|no:?)\s*\d{5}\b", label=SPAM),
        # Currency amounts and per-message prices: "£1000", "150p/msg", "GBP 4 per week", "500 pounds".
        RegexLF("re_money_amount",
                r"£\s?\d|\bgbp\s?\d|\b\d+(?:\.\d\d)?\s?(?:p|ppm|pence|gbp)\b|\b\d[\d,]*\s?pounds\b", label=SPAM),
        # Web addresses: "www.", "http://", or a bare domain (not an e-mail address).
        RegexLF("re_url", r"\bwww\.|https?://|(?<![@\w.])[a-z0-9-]+\.(?:com|co\.uk|net|biz|tv)\b", label=SPAM),
        # "You have won / been selected / are awarded" — the sender decided you are lucky.
        RegexLF("re_you_won", r"\b(?:you|u|ur)\s*(?:'ve|have|has|are|r)?\s*(?:been\s+)?(?:won|selected|"
                              r"awarded|chosen|entitled)\b", label=SPAM),
        # Ham: first-person statements ("I'm", "I'll", "I was") — people talk about themselves.
        RegexLF("re_first_person", r"\bi(?:'m|'ll|'ve|'d|\s+(?:am|was|will|think|dont|don't|didn't|cant|can't|"
                                   r"need|want|just|wan|thk|guess|know|got|have))\b", label=HAM),
        # Ham: emoticons and trailing dots, the punctuation of chat ("ok...", ":)", ";-)").
        RegexLF("re_emoticon_dots", r"[:;]-?[)(pPD]|\.\.\.|\?\?", label=HAM, flags=0),
    ]


def _heuristic_lfs() -> list[LabelingFunction]:
    # The decorator runs on every call, so each call of lfs() gets new LF objects.
    @labeling_function(label=HAM)
    def short_friendly(text: str) -> int:
        """Short messages without any digits or call to action are replies between friends ("Ok lar...")."""
        if len(text) <= 40 and not any(c.isdigit() for c in text) and not _CALL_TO_ACTION.search(text):
            return HAM
        return ABSTAIN

    @labeling_function(label=SPAM)
    def long_with_call_to_action(text: str) -> int:
        """Spam fills the 160-character SMS and ends with an instruction (call / txt / reply / claim)."""
        digits = sum(c.isdigit() for c in text)
        return SPAM if len(text) >= 120 and digits >= 4 and _CALL_TO_ACTION.search(text) else ABSTAIN

    @labeling_function(label=SPAM)
    def shouting_exclamations(text: str) -> int:
        """Two or more '!' together with an ALL-CAPS word of 4+ letters ("URGENT!", "WINNER!!") sells something."""
        caps_word = re.search(r"\b[A-Z]{4,}\b", text)
        return SPAM if text.count("!") >= 2 and caps_word and not text.isupper() else ABSTAIN

    @labeling_function(labels=(HAM, SPAM), vectorized=True)
    def length_extremes(texts: list[str]) -> np.ndarray:
        """Vectorized: very short texts (< 25 chars) are chat replies; no-space 'words' longer than 25 characters
        (glued-together codes and addresses) are spam. Everything in between abstains."""
        lengths = np.array([len(t) for t in texts])
        longest_word = np.array([max((len(w) for w in t.split()), default=0) for t in texts])
        votes = np.full(len(texts), ABSTAIN)
        votes[lengths < 25] = HAM
        votes[longest_word > 25] = SPAM
        return votes

    @labeling_function(label=SPAM, vectorized=True, continuous=True)
    def digit_count(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectorized and continuous: many digits (phone numbers, codes, prices) mean spam. Votes SPAM from 8
        digits on; the score grows with the count and reaches 1 at 20 digits."""
        digits = np.array([sum(c.isdigit() for c in t) for t in texts], dtype=float)
        votes = np.where(digits >= 8, SPAM, ABSTAIN)
        scores = np.clip((digits - 4) / 16, 0.0, 1.0)
        return votes, scores

    @labeling_function(label=SPAM, continuous=True)
    def capital_share(text: str) -> int | tuple[int, float]:
        """Continuous: spam capitalises selling words ("FREE", "URGENT"), so a high share of capitals among the
        letters means spam; the score is that share. Fully upper-case messages are someone with caps lock on,
        and short ones say too little, so both abstain."""
        letters = [c for c in text if c.isalpha()]
        if len(letters) < 30:
            return ABSTAIN
        share = sum(c.isupper() for c in letters) / len(letters)
        if 0.2 <= share <= 0.9:
            return SPAM, share
        return ABSTAIN

    @labeling_function(label=HAM, continuous=True)
    def casual_lowercase(text: str) -> int | tuple[int, float]:
        """Continuous: a message with no digits, mostly lower-case letters and chat shorthand reads like a friend;
        the score is the share of lower-case letters."""
        letters = [c for c in text if c.isalpha()]
        if not letters or any(c.isdigit() for c in text) or not _CASUAL.search(text):
            return ABSTAIN
        share = sum(c.islower() for c in letters) / len(letters)
        return (HAM, share) if share >= 0.6 else ABSTAIN

    return [short_friendly, long_with_call_to_action, shouting_exclamations, length_extremes, digit_count,
            capital_share, casual_lowercase]


def lfs() -> list[LabelingFunction]:
    """A fresh list of the SMS spam LFs (keyword, regex, then heuristic LFs)."""
    return [*_keyword_lfs(), *_regex_lfs(), *_heuristic_lfs()]

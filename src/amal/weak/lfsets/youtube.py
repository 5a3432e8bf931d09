"""Hand-written labeling functions for the YouTube Spam Collection (ham = 0, spam = 1).

The data are comments under five popular music videos (Psy, Katy Perry, LMFAO, Eminem, Shakira). Comment
spam is self-promotion: "check out my channel", "subscribe and I'll subscribe back", links to other sites,
social-media handles, free gift cards. Ham talks about *this* video: the song, the dance, the artist, the
view count, jokes and insults.

Honesty note: while writing these LFs only a development sample was read — ``Youtube01-Psy.csv`` — to check
the format and sanity-check ideas. No LF was scored on, or tuned against, the other four files; use those
for evaluation. (The artist and song names in ``kw_artist`` come from the data set's file names and general
knowledge of the videos, not from reading their comments.)

Comments come as scraped: they may hold HTML entities (``&amp;``, ``&lt;3``) and a trailing byte-order
mark; the LFs below work on either raw or cleaned text. See :mod:`amal.weak.lf` for the API they use.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from amal.weak.lf import ABSTAIN, KeywordLF, LabelingFunction, RegexLF, labeling_function

HAM, SPAM = 0, 1

_PROMO_WORDS = re.compile(r"\b(?:my|our|channel|subscribe\w*|sub|subs|check|please|plz|pls|follow|videos?|vids?|"
                          r"visit|share|https?|www)\b", re.IGNORECASE)
_SELF = re.compile(r"\b(?:i|i'm|im|my|we|our|us)\b", re.IGNORECASE)
_PROMO_HINT = re.compile(r"https?://|www\.|\.com\b|\b(?:sub\w*|channel|check|follow|my|visit)\b", re.IGNORECASE)


def _keyword_lfs() -> list[LabelingFunction]:
    return [
        # Asking for subscribers is the signature of comment spam (misspellings included).
        KeywordLF("kw_subscribe", ["subscribe", "subscribed", "subscribing", "suscribe", "sucscribe", "subscibe",
                                   "subcribe", "sub", "sub4sub", "subbing"], label=SPAM),
        # "Check out my ..." invites the reader somewhere else.
        KeywordLF("kw_check_out", ["check out", "check it out", "check me out", "check this out", "checkout",
                                   "check my", "check our", "checked out"], label=SPAM),
        # The commenter's own channel or content.
        KeywordLF("kw_my_channel", ["my channel", "our channel", "my videos", "my video", "my vids", "my vid",
                                    "my page", "my music", "my song", "my new song", "my youtube", "my rap",
                                    "my covers", "my stream", "new channel", "new youtuber", "my first video"],
                  label=SPAM),
        # Begging: "please", "plz", "pls" — fans rarely plead with the other readers.
        KeywordLF("kw_plead", ["please", "plz", "pls", "plzz", "plizz", "pleaseee", "plss"], label=SPAM),
        # Pointers to other social networks and follow-for-follow deals.
        KeywordLF("kw_social", ["facebook", "twitter", "instagram", "twitch", "soundcloud", "tumblr", "tsu",
                                "google+", "follow me", "add me", "follow 4 follow", "like 4 like", "f4f", "l4l"],
                  label=SPAM),
        # Money, prizes and freebies ("free gift cards", "earn money").
        KeywordLF("kw_money", ["money", "gift card", "gift cards", "earn", "get paid", "free", "giveaway",
                               "giveaways", "cash", "prize", "win", "paypal"], label=SPAM),
        # Promotion of a project, shop or petition.
        KeywordLF("kw_promotion", ["promote", "website", "blog", "project", "petition", "donate", "support me",
                                   "visit", "download", "shop", "buy", "fundraiser", "kickstarter"], label=SPAM),
        # Ham: the comment is about *this* song or video rather than the commenter's.
        KeywordLF("kw_this_song", ["this song", "the song", "this video", "the video", "this music", "this vid",
                                   "music video", "this clip", "this tune"], label=HAM),
        # Ham: praise of the song.
        KeywordLF("kw_praise", ["love this", "love it", "best song", "great song", "nice song", "good song",
                                "amazing", "masterpiece", "catchy", "classic", "never gets old",
                                "great music", "favorite", "favourite", "legend", "fantastic", "so good"],
                  label=HAM),
        # Ham: popular videos attract comments about their view count.
        KeywordLF("kw_views", ["views", "billion", "view count", "most viewed", "viewers", "watched",
                               "dislikes"], label=HAM),
        # Ham: nostalgia and "who's still watching in <year>".
        KeywordLF("kw_nostalgia", ["in 2013", "in 2014", "in 2015", "years ago", "still watching", "who is watching",
                                   "who's watching", "anyone watching", "remember when", "memories",
                                   "childhood", "still listening"], label=HAM),
        # Ham: laughter and surprise.
        KeywordLF("kw_laughter", ["lol", "haha", "hahaha", "lmao", "rofl", "xd", "omg", "wow", "funny", "lool"],
                  label=HAM),
        # Ham: insults and complaints about the video — spammers want your goodwill.
        KeywordLF("kw_negative", ["hate", "sucks", "stupid", "annoying", "shit", "worst", "crap", "dumb", "fuck",
                                  "fucking"], label=HAM),
        # Ham: naming the artist or the song of one of the five videos.
        KeywordLF("kw_artist", ["psy", "gangnam", "oppa", "katy", "perry", "roar", "lmfao", "party rock",
                                "shuffle", "eminem", "rihanna", "love the way you lie", "shakira", "waka",
                                "world cup"], label=HAM),
    ]


def _regex_lfs() -> list[LabelingFunction]:
    return [
        # A link that does not point at YouTube itself sends the reader off-site.
        RegexLF("re_url", r"(?:https?://|www\.)(?!(?:www\.|m\.)?youtu(?:\.be|be\.com))", label=SPAM),
        # A bare domain, possibly spaced out to dodge filters: "murdev.com", "kidsmediausa  . com".
        RegexLF("re_bare_domain", r"\b[a-z0-9-]{3,}\s{0,2}\.\s{0,2}(?:com|net|org|ru|tv|io|ly|me|biz|pl|info)\b",
                label=SPAM),
        # Links to other YouTube videos or channels ("watch?v=...", "youtube.com/user/...").
        RegexLF("re_youtube_promo", r"watch\?v=|youtube\.com/(?:user|channel|c)/|\byoutube/\w+", label=SPAM),
        # Subscriber goals and sub-for-sub deals: "if I get 100 subs", "I'll subscribe back", "sub 4 sub".
        RegexLF("re_sub_deal", r"\bif i (?:get|reach|hit)\s+\d+|\b\d+\s*(?:subs|subscribers)\b|"
                               r"\bsub\s*(?:4|for)\s*sub\b|\bsub(?:scribe)?\s+back\b", label=SPAM),
        # Ham: long view counts written out with separators ("2,127,315,950").
        RegexLF("re_view_number", r"\b\d{1,3}(?:[.,]\d{3}){2,}\b", label=HAM),
    ]


def _heuristic_lfs() -> list[LabelingFunction]:
    # The decorator runs on every call, so each call of lfs() gets new LF objects.
    @labeling_function(label=HAM, vectorized=True, continuous=True)
    def short_comment(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Vectorized and continuous: a reaction of at most 6 words with no link or promotion hint is a fan
        reacting ("Oppa! Yeah! Best Song!"); the fewer the words, the higher the score."""
        words = np.array([len(t.split()) for t in texts], dtype=float)
        promo = np.array([bool(_PROMO_HINT.search(t)) for t in texts])
        fire = (words <= 6) & ~promo
        votes = np.where(fire, HAM, ABSTAIN)
        scores = np.clip(1.0 - (words - 1) / 8, 0.0, 1.0)
        return votes, scores

    @labeling_function(label=HAM)
    def emoji_or_symbols(text: str) -> int:
        """Emoji, hearts and decorative symbols without any link are an emotional reaction, not an ad."""
        has_symbol = any(unicodedata.category(c) == "So" for c in text)
        return HAM if has_symbol and not _PROMO_HINT.search(text) else ABSTAIN

    @labeling_function(label=SPAM, continuous=True)
    def promo_intensity(text: str) -> int | tuple[int, float]:
        """Continuous: count self-promotion words (my, channel, subscribe, check, please, follow, video, links);
        two or more vote SPAM, with a score 1 - 0.6**count that approaches 1 as the pitch piles up."""
        hits = len(_PROMO_WORDS.findall(text))
        return (SPAM, 1.0 - 0.6 ** hits) if hits >= 2 else ABSTAIN

    @labeling_function(label=SPAM, continuous=True)
    def long_self_pitch(text: str) -> int | tuple[int, float]:
        """Continuous: a long comment (150+ characters) that talks about "I / my / we / our" is usually someone
        introducing themselves to sell something; the score grows with the length (1 at 450 characters)."""
        if len(text) < 150 or len(_SELF.findall(text)) < 2:
            return ABSTAIN
        return SPAM, min(1.0, len(text) / 450)

    return [short_comment, emoji_or_symbols, promo_intensity, long_self_pitch]


def lfs() -> list[LabelingFunction]:
    """A fresh list of the YouTube comment-spam LFs (keyword, regex, then heuristic LFs)."""
    return [*_keyword_lfs(), *_regex_lfs(), *_heuristic_lfs()]

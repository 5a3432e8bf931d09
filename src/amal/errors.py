"""One exception type for every user-facing problem, so the CLI can print it as one line."""


class AmalError(ValueError):
    """Bad input or configuration; the message names the problem and is meant for the user."""

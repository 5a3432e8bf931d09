"""Analysis of finished runs: ``build_report`` writes an HTML and a Markdown report of what Λ learned."""

from amal.analysis.report import add_report_parser, build_report

__all__ = ["add_report_parser", "build_report"]

"""rollcall: checks that each student on a meeting gallery is really that student."""
__version__ = "0.1.0"

"""The package version (single source of truth, read by setuptools too)."""

__version__ = "2.4.0"

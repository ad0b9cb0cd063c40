"""The one line a test suite needs to get aiokatcp's fixtures and virtual_clock marker."""

pytest_plugins = ["aiokatcp.testing.plugin"]

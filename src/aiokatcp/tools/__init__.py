"""Command-line tools, written as users of aiokatcp's public API only."""

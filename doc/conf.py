"""Sphinx configuration for the aiokatcp documentation."""

import os
import sys

sys.path.insert(0, os.path.abspath("../src"))

from aiokatcp import __version__

project = "aiokatcp"
copyright = "2026, the aiokatcp developers"
author = "the aiokatcp developers"
release = __version__
version = ".".join(__version__.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
# No intersphinx: the build must work offline (CI reaches only package registries).
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
nitpicky = False
html_theme = "sphinx_rtd_theme"
exclude_patterns = ["_build"]
autodoc_inherit_docstrings = False

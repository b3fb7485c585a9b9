"""The product analyses: one module per analysis (input, selector, presenter, page) on the
shared page base in pages.py; their read API in api.py."""

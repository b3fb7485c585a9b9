"""Product analyses for product managers: one selector per analysis, parameterized SQL only."""

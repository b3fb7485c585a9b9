"""Pages of the analytics area. The product analyses (the index overview, retention, funnels,
revenue, feature usage, satisfaction) are in views_product.py."""

"""Template helpers of the analytics pages."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`errors|get_item:name`: a form's problems for one field (empty when none)."""
    if not mapping:
        return []
    return mapping.get(key, [])

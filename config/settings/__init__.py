"""The settings module (`DJANGO_SETTINGS_MODULE=config.settings`): the shared base, then what
differs by environment: `local` when DEBUG is on (the default), `production` when `DEBUG=0`."""

from config.settings.base import DEBUG

if DEBUG:
    from config.settings.local import *  # noqa: F403
else:
    from config.settings.production import *  # noqa: F403

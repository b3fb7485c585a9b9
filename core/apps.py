from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "core"
    # The label its tables, migrations and permissions were created under; renaming it would
    # orphan every production row of the audit log and the API keys.
    label = "platform_site"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from core import strict
        from core.permissions_sync import sync_role_permissions

        strict.install()
        # Files of this process (SQLite, the embedded stores, sockets) live under var/.
        for directory in (settings.VAR_DIR, settings.STATIC_ROOT):
            directory.mkdir(parents=True, exist_ok=True)
        post_migrate.connect(sync_role_permissions, dispatch_uid="core.sync_role_permissions")

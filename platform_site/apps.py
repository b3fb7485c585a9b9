from django.apps import AppConfig


class PlatformSiteConfig(AppConfig):
    name = "platform_site"
    verbose_name = "Platform"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from platform_site.permissions_sync import sync_role_permissions

        post_migrate.connect(
            sync_role_permissions, dispatch_uid="platform_site.sync_role_permissions"
        )
        post_migrate.connect(
            _alert_defaults_ensure, dispatch_uid="platform_site.alert_defaults_ensure"
        )


def _alert_defaults_ensure(sender=None, **kwargs) -> None:
    from platform_site.alerts import alert_defaults_ensure

    alert_defaults_ensure(sender=sender, **kwargs)

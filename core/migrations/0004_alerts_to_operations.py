"""The alert and platform-setting models now belong to the operations app (state only: the
tables keep their names and rows; see operations/migrations/0001_initial.py)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("platform_site", "0003_alerts"), ("operations", "0001_initial")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Alert"),
                migrations.DeleteModel(name="AlertRule"),
                migrations.DeleteModel(name="PlatformSetting"),
            ]
        )
    ]

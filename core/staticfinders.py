"""Serves plotly.js from the installed plotly package as `static/plotly/plotly.min.js`."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import FileSystemFinder

PLOTLY_DIR = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(FileSystemFinder):
    def __init__(self, app_names=None, *args, **kwargs):
        from django.contrib.staticfiles.finders import BaseFinder
        from django.core.files.storage import FileSystemStorage

        BaseFinder.__init__(self)
        self.locations = [("plotly", str(PLOTLY_DIR))]
        storage = FileSystemStorage(location=str(PLOTLY_DIR))
        storage.prefix = "plotly"
        self.storages = {str(PLOTLY_DIR): storage}

    def list(self, ignore_patterns):
        storage = self.storages[str(PLOTLY_DIR)]
        if (PLOTLY_DIR / "plotly.min.js").exists():
            yield "plotly.min.js", storage

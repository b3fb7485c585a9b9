"""Pages of the devices area."""

from django.shortcuts import render

from platform_site.roles import role_required


@role_required()
def index(request):
    return render(request, "devices/index.html")

"""Pages of the deployments area."""

from django.shortcuts import render

from platform_site.roles import role_required


@role_required()
def index(request):
    return render(request, "deployments/index.html")

"""Pages. An anonymous volunteer's identity is issued by the API (classify.js asks for it
before anything else), never by a page view: pages cannot be used to mint volunteers."""

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import ensure_csrf_cookie

from classifications.volunteers import volunteer_from_request
from workflows.models import Workflow

from .selectors import default_workflow, history_queryset, history_rows, site_stats

HISTORY_PAGE_SIZE = 24


@ensure_csrf_cookie
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/landing.html", {"stats": site_stats(), "workflow": default_workflow()})


@ensure_csrf_cookie
def classify(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    workflow = get_object_or_404(Workflow, slug=slug) if slug else default_workflow()
    if workflow is None:
        raise Http404("no active workflow")
    return render(request, "frontend/classify.html", {"workflow": workflow})


@ensure_csrf_cookie
def my_classifications(request: HttpRequest) -> HttpResponse:
    volunteer = volunteer_from_request(request)
    key = volunteer.key if volunteer else ""  # no identity yet: no history
    favourites = request.GET.get("favourites") in ("1", "true")
    paginator = Paginator(history_queryset(volunteer_key=key, favourites=favourites), HISTORY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "frontend/my_classifications.html", {
        "page": page, "rows": history_rows(list(page.object_list)), "favourites": favourites,
        "total": history_queryset(volunteer_key=key).count(),
        "favourite_total": history_queryset(volunteer_key=key, favourites=True).count(),
    })

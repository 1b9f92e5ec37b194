"""Pages. Each one establishes the volunteer's session first, so the API calls the page's
scripts make in parallel all see the same anonymous volunteer."""

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
    volunteer_from_request(request)
    return render(request, "frontend/landing.html", {"stats": site_stats(), "workflow": default_workflow()})


@ensure_csrf_cookie
def classify(request: HttpRequest, slug: str | None = None) -> HttpResponse:
    volunteer_from_request(request)
    workflow = get_object_or_404(Workflow, slug=slug) if slug else default_workflow()
    if workflow is None:
        raise Http404("no active workflow")
    return render(request, "frontend/classify.html", {"workflow": workflow})


@ensure_csrf_cookie
def my_classifications(request: HttpRequest) -> HttpResponse:
    volunteer = volunteer_from_request(request)
    favourites = request.GET.get("favourites") in ("1", "true")
    paginator = Paginator(history_queryset(volunteer_key=volunteer.key, favourites=favourites), HISTORY_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "frontend/my_classifications.html", {
        "page": page, "rows": history_rows(list(page.object_list)), "favourites": favourites,
        "total": history_queryset(volunteer_key=volunteer.key).count(),
        "favourite_total": history_queryset(volunteer_key=volunteer.key, favourites=True).count(),
    })

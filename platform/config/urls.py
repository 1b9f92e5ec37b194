from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path, register_converter
from django.urls.converters import IntConverter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from classifications import api as classification_api
from galaxies import api as galaxy_api
from retraining import api as retraining_api
from retraining.selectors import active_predictions_for_galaxy
from workflows import api as workflow_api


class IdConverter(IntConverter):
    """A database id: at most 18 digits, so an id past the bigint range is a 404, not a database error."""

    regex = "[0-9]{1,18}"


register_converter(IdConverter, "id")

api_patterns = [
    path("workflows/", workflow_api.WorkflowListApi.as_view(), name="workflow-list"),
    path("workflows/<slug:slug>/", workflow_api.WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<slug:slug>/next/", classification_api.NextSubjectsApi.as_view(), name="next-subjects"),
    path("volunteers/anonymous/", classification_api.VolunteerIdentityApi.as_view(), name="volunteer-identity"),
    path("classifications/", classification_api.ClassificationCreateApi.as_view(), name="classification-create"),
    path("classifications/batch/", classification_api.ClassificationBatchCreateApi.as_view(),
         name="classification-batch-create"),
    path("me/classifications/", classification_api.MyClassificationsApi.as_view(), name="my-classifications"),
    path("me/classifications/<id:pk>/favourite/", classification_api.FavouriteApi.as_view(), name="favourite"),
    path("galaxies/", galaxy_api.GalaxyListApi.as_view(), name="galaxy-list"),
    # Tallies (classifications) with the active model's predictions (retraining, the layer above):
    # composed here, where both are visible.
    path("galaxies/<str:id_str>/", classification_api.GalaxyDetailApi.as_view(
        predictions=active_predictions_for_galaxy), name="galaxy-detail"),
    path("workflows/<slug:slug>/training-runs/", retraining_api.TrainingRunListCreateApi.as_view(),
         name="training-run-list"),
    path("workflows/<slug:slug>/model-versions/", retraining_api.ModelVersionListApi.as_view(),
         name="model-version-list"),
    path("training-runs/<id:pk>/", retraining_api.TrainingRunDetailApi.as_view(), name="training-run-detail"),
    path("training-runs/<id:pk>/cancel/", retraining_api.TrainingRunCancelApi.as_view(), name="training-run-cancel"),
    path("model-versions/<id:pk>/activate/", retraining_api.ModelVersionActivateApi.as_view(),
         name="model-version-activate"),
    path("review/", include("review.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="frontend/api_docs.html"), name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("api/", include(api_patterns)),
    path("workbench/", include("frontend.workbench_urls")),
    path("", include("monitoring.urls")),
    path("", include("frontend.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)

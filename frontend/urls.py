from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("classify/", views.classify, name="classify"),
    path("classify/<slug:slug>/", views.classify, name="classify-workflow"),
    path("me/", views.my_classifications, name="my-classifications-page"),
    # Not under config.urls' api/ include, which falls through to here for unmatched paths.
    path("api/site/stats/", api.SiteStatsApi.as_view(), name="site-stats"),
    path("api/site/field-guide/<slug:slug>/", api.FieldGuideApi.as_view(), name="field-guide"),
]

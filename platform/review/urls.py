"""The workbench API, included under /api/review/."""

from django.urls import path

from . import api

urlpatterns = [
    path("workflows/<slug:slug>/queue/", api.ReviewQueueApi.as_view(), name="review-queue"),
    path("workflows/<slug:slug>/scores/refresh/", api.RefreshScoresApi.as_view(), name="review-scores-refresh"),
    path("workflows/<slug:slug>/expert-classifications/", api.ExpertClassificationListApi.as_view(),
         name="review-expert-classification-list"),
    path("workflows/<slug:slug>/galaxies/<str:id_str>/", api.DossierApi.as_view(), name="review-dossier"),
    path("workflows/<slug:slug>/galaxies/<str:id_str>/expert-classification/",
         api.ExpertClassificationApi.as_view(), name="review-expert-classification"),
    path("workflows/<slug:slug>/galaxies/<str:id_str>/retirement/", api.RetirementApi.as_view(),
         name="review-retirement"),
    path("workflows/<slug:slug>/galaxies/<str:id_str>/similar/", api.SimilarGalaxiesApi.as_view(),
         name="review-similar"),
    path("galaxies/<str:id_str>/flags/", api.FlagListCreateApi.as_view(), name="review-flags"),
    path("flags/<int:pk>/resolve/", api.ResolveFlagApi.as_view(), name="review-flag-resolve"),
    path("workflows/<slug:slug>/models/", api.ModelDashboardApi.as_view(), name="review-models"),
    path("workflows/<slug:slug>/models/<int:number>/activate/", api.ActivateVersionApi.as_view(),
         name="review-model-activate"),
    path("workflows/<slug:slug>/expert-agreement/", api.VolunteerAgreementApi.as_view(),
         name="review-expert-agreement"),
    path("cone/", api.ConeSearchApi.as_view(), name="review-cone"),
    path("workflows/<slug:slug>/galaxies/<str:id_str>/shadow-ban/", api.ShadowBanApi.as_view(),
         name="review-shadow-ban"),
    path("workflows/<slug:slug>/galaxies/<str:id_str>/shadow-ban/lift/", api.LiftShadowBanApi.as_view(),
         name="review-shadow-ban-lift"),
    path("workflows/<slug:slug>/exports/", api.ExportListCreateApi.as_view(), name="review-exports"),
    path("exports/<int:pk>/", api.ExportJobApi.as_view(), name="review-export"),
    path("exports/<int:pk>/download/", api.ExportDownloadApi.as_view(), name="review-export-download"),
]

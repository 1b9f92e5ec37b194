from django.urls import path

from . import workbench

urlpatterns = [
    path("", workbench.home, name="workbench"),
    path("<slug:slug>/", workbench.queue, name="workbench-queue"),
    path("<slug:slug>/models/", workbench.models, name="workbench-models"),
    path("<slug:slug>/models.csv", workbench.models_csv, name="workbench-models-csv"),
    path("<slug:slug>/models/<int:number>/activate/", workbench.activate_version, name="workbench-activate"),
    path("<slug:slug>/exports/", workbench.exports, name="workbench-exports"),
    path("<slug:slug>/models/curves.svg", workbench.learning_curves, name="workbench-learning-curves"),
    path("<slug:slug>/galaxies/<str:id_str>/", workbench.dossier, name="workbench-dossier"),
    path("<slug:slug>/galaxies/<str:id_str>/posterior.svg", workbench.posterior_chart, name="workbench-posterior"),
]

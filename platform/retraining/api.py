"""Retraining API, by model permission (not is_staff): start, poll and cancel training runs; list, activate and roll back model versions."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.permissions import ModelPermissionRequired
from workflows.models import Workflow

from .models import ModelVersion, TrainingRun
from .runs import cancel_training_run, start_training_run
from .selectors import model_versions, training_runs
from .serializers import ModelVersionSerializer, StartRunSerializer, TrainingRunSerializer
from .services import activate_model_version
from .tasks import enqueue_training


class TrainingRunListCreateApi(ListAPIView):
    permission_classes = [ModelPermissionRequired]
    required_permissions = {"GET": ["retraining.view_trainingrun"], "POST": ["retraining.add_trainingrun"]}
    serializer_class = TrainingRunSerializer

    def get_queryset(self):
        return training_runs(workflow=get_object_or_404(Workflow, slug=self.kwargs["slug"]))

    @extend_schema(summary="Start a training run of this workflow (admin)", request=StartRunSerializer,
                   responses={201: TrainingRunSerializer})
    def post(self, request: Request, slug: str) -> Response:
        workflow = get_object_or_404(Workflow, slug=slug)
        serializer = StartRunSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        head = data["kind"] == TrainingRun.Kind.HEAD
        run = start_training_run(workflow=workflow, trigger=TrainingRun.Trigger.API, triggered_by_id=request.user.pk,
                                 kind=data["kind"], full_retrain=data["full_retrain"],
                                 overrides=data.get("head") if head else data.get("hyperparameters"),
                                 expert_weight=data["expert_weight"])
        enqueue_training(run.pk)
        return Response(TrainingRunSerializer(run).data, status=status.HTTP_201_CREATED)


class TrainingRunDetailApi(APIView):
    permission_classes = [ModelPermissionRequired]
    required_permissions = {"GET": ["retraining.view_trainingrun"]}

    @extend_schema(summary="Poll a training run (admin)", responses=TrainingRunSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(TrainingRunSerializer(get_object_or_404(training_runs(), pk=pk)).data)


class TrainingRunCancelApi(APIView):
    permission_classes = [ModelPermissionRequired]
    required_permissions = {"POST": ["retraining.change_trainingrun"]}

    @extend_schema(summary="Cancel a queued or running training run (admin)", request=None,
                   responses=TrainingRunSerializer)
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(TrainingRun, pk=pk)
        return Response(TrainingRunSerializer(cancel_training_run(run_id=pk)).data)


class ModelVersionListApi(ListAPIView):
    permission_classes = [ModelPermissionRequired]
    required_permissions = {"GET": ["retraining.view_modelversion"]}
    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        return model_versions(workflow=get_object_or_404(Workflow, slug=self.kwargs["slug"]))


class ModelVersionActivateApi(APIView):
    permission_classes = [ModelPermissionRequired]
    required_permissions = {"POST": ["retraining.change_modelversion"]}

    @extend_schema(summary="Activate (or roll back to) a model version; its scores become the queue "
                           "priorities (admin)", request=None, responses=ModelVersionSerializer)
    def post(self, request: Request, pk: int) -> Response:
        get_object_or_404(ModelVersion, pk=pk)
        return Response(ModelVersionSerializer(activate_model_version(model_version_id=pk,
                                                                      activated_by_id=request.user.pk)).data)

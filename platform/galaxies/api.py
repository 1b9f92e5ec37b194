"""Galaxies with their vote tallies."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifications.selectors import vote_summary
from retraining.selectors import active_predictions_for_galaxy
from workflows.models import Workflow

from .models import Galaxy
from .serializers import GalaxyDetailSerializer, GalaxySerializer


class GalaxyListApi(ListAPIView):
    queryset = Galaxy.objects.all()
    serializer_class = GalaxySerializer


class GalaxyDetailApi(APIView):
    @extend_schema(summary="A galaxy with vote counts and fractions per question, per workflow",
                   parameters=[OpenApiParameter("workflow", str, description="Only this workflow's votes")],
                   responses=GalaxyDetailSerializer)
    def get(self, request: Request, id_str: str) -> Response:
        galaxy = get_object_or_404(Galaxy, id_str=id_str)
        statuses = galaxy.subject_statuses.select_related("workflow")
        if slug := request.query_params.get("workflow"):
            get_object_or_404(Workflow, slug=slug)
            statuses = statuses.filter(workflow__slug=slug)
        body = GalaxyDetailSerializer(galaxy).data
        predictions = active_predictions_for_galaxy(galaxy_id=galaxy.pk)
        body["workflows"] = [{
            "workflow": s.workflow.slug, "classification_count": s.classification_count,
            "retired_at": s.retired_at, "retirement_reason": s.retirement_reason, "priority": s.priority,
            "questions": vote_summary(tree=s.workflow.decision_tree, vote_counts=s.vote_counts),
            "prediction": predictions.get(s.workflow_id),
        } for s in statuses]
        return Response(body)

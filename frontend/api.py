"""Small read-only endpoints the volunteer UI needs beyond the core API."""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from workflows.models import Workflow

from .selectors import field_guide, site_stats


class SiteStatsApi(APIView):
    @extend_schema(summary="Live counts for the landing page", responses=inline_serializer("SiteStats", {
        "galaxies": serializers.IntegerField(), "classifications": serializers.IntegerField(),
        "volunteers": serializers.IntegerField(), "model_version": serializers.CharField(allow_null=True)}))
    def get(self, request: Request) -> Response:
        return Response(site_stats())


class FieldGuideApi(APIView):
    @extend_schema(summary="A workflow's field guide: help and example pictures per answer",
                   responses=inline_serializer("FieldGuide", {"workflow": serializers.CharField(),
                                                              "questions": serializers.ListField()}))
    def get(self, request: Request, slug: str) -> Response:
        return Response(field_guide(workflow=get_object_or_404(Workflow, slug=slug)))

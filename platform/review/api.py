"""The workbench API: scientists and admins only (403 JSON otherwise). Each view parses the
request, calls a selector or service and serialises the result."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.broker import publish
from galaxies.models import Galaxy
from workflows.models import Workflow

from . import selectors, services
from .access import IsScientist
from .errors import ExportNotReady
from .export import EXPORT_CONTENT_TYPES
from .params import DEC_SCHEMA, QUEUE_PARAMETERS, RA_SCHEMA, RADIUS_SCHEMA, parse_int, parse_queue_query
from .serializers import (
    ConeInput,
    ExpertClassificationInput,
    ExpertClassificationSerializer,
    ExportInput,
    ExportJobSerializer,
    FlagInput,
    FlagSerializer,
    LiftShadowBanInput,
    ResolveFlagInput,
    RetirementInput,
    RetirementOverrideSerializer,
    ReviewQueueItemSerializer,
    ShadowBanInput,
    parse,
)


class WorkbenchApi(APIView):
    permission_classes = [IsScientist]


def queue_body(*, workflow: Workflow, params) -> dict:
    """The queue's JSON body; shared by the API and the page's first render."""
    services.ensure_review_scores(workflow=workflow)
    query, separations = parse_queue_query(params)
    page = selectors.review_queue(workflow=workflow, query=query)
    items = page.items
    if separations is not None:
        items = [{**item, "separation_deg": separations[item["galaxy_id"]]} for item in items]
    return {"workflow": workflow.slug, "model_version": page.model_version.number, "page": page.page,
            "page_size": page.page_size, "has_next": page.has_next,
            "results": ReviewQueueItemSerializer(items, many=True).data}


class ReviewQueueApi(WorkbenchApi):
    @extend_schema(summary="Review queue: galaxies sorted and filtered by the active model's scores",
                   parameters=QUEUE_PARAMETERS, responses=inline_serializer("ReviewQueuePage", {
                       "workflow": serializers.CharField(), "model_version": serializers.IntegerField(),
                       "page": serializers.IntegerField(), "page_size": serializers.IntegerField(),
                       "has_next": serializers.BooleanField(), "results": ReviewQueueItemSerializer(many=True)}))
    def get(self, request: Request, slug: str) -> Response:
        return Response(queue_body(workflow=get_object_or_404(Workflow, slug=slug), params=request.query_params))


class RefreshScoresApi(WorkbenchApi):
    @extend_schema(summary="Recompute the active model's review scores (disagreement uses the votes as of now)",
                   request=None, responses={202: inline_serializer("RefreshQueued", {
                       "model_version": serializers.IntegerField()})})
    def post(self, request: Request, slug: str) -> Response:
        from retraining.selectors import active_model_version

        from .errors import BrokerUnavailable, NoActiveModel
        from .tasks import refresh_review_scores

        workflow = get_object_or_404(Workflow, slug=slug)
        version = active_model_version(workflow=workflow)
        if version is None:
            raise NoActiveModel(f"{workflow.slug} has no active model yet", field="workflow")
        if publish(refresh_review_scores, version.pk) is not None:
            raise BrokerUnavailable("the task queue did not answer; try again shortly", field="workflow")
        return Response({"model_version": version.number}, status=status.HTTP_202_ACCEPTED)


class ConeSearchApi(WorkbenchApi):
    @extend_schema(summary="Galaxies within a cone, nearest first (HEALPix pre-selection, exact separation)",
                   parameters=[OpenApiParameter("ra", RA_SCHEMA, required=True),
                               OpenApiParameter("dec", DEC_SCHEMA, required=True),
                               OpenApiParameter("radius", RADIUS_SCHEMA, required=True, description="Degrees"),
                               OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
                   responses=inline_serializer("ConeResult", {"count": serializers.IntegerField(),
                                                              "results": serializers.ListField()}))
    def get(self, request: Request) -> Response:
        cone = parse(ConeInput, request.query_params)
        limit = parse_int(request.query_params, "limit", 100, low=1, high=1000)
        found = selectors.cone(ra=cone["ra"], dec=cone["dec"], radius_deg=cone["radius"])
        galaxies = Galaxy.objects.in_bulk([gid for gid, _ in found[:limit]])
        return Response({"count": len(found), "results": [
            {"id": gid, "id_str": galaxies[gid].id_str, "ra": galaxies[gid].ra, "dec": galaxies[gid].dec,
             "survey": galaxies[gid].survey, "separation_deg": separation} for gid, separation in found[:limit]]})


class DossierApi(WorkbenchApi):
    @extend_schema(summary="A galaxy's dossier in one workflow: votes, predictions across model versions, "
                           "classifications by pseudonym, expert labels, flags and overrides",
                   responses=inline_serializer("Dossier", {"galaxy": serializers.CharField()}))
    def get(self, request: Request, slug: str, id_str: str) -> Response:
        workflow = get_object_or_404(Workflow, slug=slug)
        dossier = selectors.galaxy_dossier(workflow=workflow, galaxy=get_object_or_404(Galaxy, id_str=id_str))
        galaxy = dossier["galaxy"]
        return Response({
            "galaxy": galaxy.id_str, "ra": galaxy.ra, "dec": galaxy.dec, "survey": galaxy.survey,
            "image_url": galaxy.image.url if galaxy.image else None, "workflow": workflow.slug,
            "classification_count": dossier["classification_count"], "retired_at": dossier["retired_at"],
            "retirement_reason": dossier["retirement_reason"], "votes": dossier["votes"],
            "predictions": dossier["predictions"], "classifications": dossier["classifications"],
            "expert_classifications": ExpertClassificationSerializer(dossier["expert_classifications"], many=True).data,
            "flags": FlagSerializer(dossier["flags"], many=True).data,
            "overrides": RetirementOverrideSerializer(dossier["overrides"], many=True).data,
        })


class SimilarGalaxiesApi(WorkbenchApi):
    @extend_schema(summary="More like this: the galaxies nearest to this one in the active model's encoder "
                           "embedding (cosine similarity), most similar first",
                   parameters=[OpenApiParameter("k", {"type": "integer", "minimum": 1, "maximum": 100},
                                                description="How many (default REVIEW_NEIGHBOURS, 12)")],
                   responses=inline_serializer("SimilarGalaxies", {
                       "model_version": serializers.IntegerField(), "method": serializers.CharField(),
                       "results": serializers.ListField()}))
    def get(self, request: Request, slug: str, id_str: str) -> Response:
        from django.conf import settings

        k = parse_int(request.query_params, "k", settings.REVIEW_NEIGHBOURS, low=1, high=settings.REVIEW_MAX_NEIGHBOURS)
        found = selectors.similar_galaxies(workflow=get_object_or_404(Workflow, slug=slug),
                                           galaxy=get_object_or_404(Galaxy, id_str=id_str), k=k)
        return Response({"model_version": found.model_version.number, "method": found.method,
                         "results": found.items})


class ExpertClassificationApi(WorkbenchApi):
    @extend_schema(summary="Record (or replace) your expert classification of a galaxy, validated by the tree",
                   request=ExpertClassificationInput, responses={201: ExpertClassificationSerializer})
    def post(self, request: Request, slug: str, id_str: str) -> Response:
        workflow = get_object_or_404(Workflow, slug=slug)
        data = parse(ExpertClassificationInput, request.data)
        label = services.record_expert_classification(
            workflow=workflow, galaxy=get_object_or_404(Galaxy, id_str=id_str), expert_id=request.user.pk,
            annotations=data["annotations"], comment=data["comment"])
        return Response(ExpertClassificationSerializer(label).data, status=status.HTTP_201_CREATED)


class ExpertClassificationListApi(WorkbenchApi):
    @extend_schema(summary="Every expert classification of a workflow", responses=ExpertClassificationSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        labels = selectors.expert_classifications(workflow=get_object_or_404(Workflow, slug=slug))
        limit = parse_int(request.query_params, "limit", 500, low=1, high=5000)
        return Response(ExpertClassificationSerializer(labels[:limit], many=True).data)


class FlagListCreateApi(WorkbenchApi):
    @extend_schema(summary="A galaxy's flags", responses=FlagSerializer(many=True))
    def get(self, request: Request, id_str: str) -> Response:
        galaxy = get_object_or_404(Galaxy, id_str=id_str)
        return Response(FlagSerializer(selectors.flags(galaxy=galaxy), many=True).data)

    @extend_schema(summary="Flag a galaxy (artifact, interesting, needs discussion, bad image)", request=FlagInput,
                   responses={201: FlagSerializer})
    def post(self, request: Request, id_str: str) -> Response:
        data = parse(FlagInput, request.data)
        flag = services.flag_galaxy(galaxy=get_object_or_404(Galaxy, id_str=id_str), kind=data["kind"],
                                    comment=data["comment"], user_id=request.user.pk)
        return Response(FlagSerializer(flag).data, status=status.HTTP_201_CREATED)


class ResolveFlagApi(WorkbenchApi):
    @extend_schema(summary="Resolve an open flag", request=ResolveFlagInput, responses=FlagSerializer)
    def post(self, request: Request, pk: int) -> Response:
        data = parse(ResolveFlagInput, request.data)
        return Response(FlagSerializer(services.resolve_flag(flag_id=pk, user_id=request.user.pk,
                                                             resolution=data["resolution"])).data)


class RetirementApi(WorkbenchApi):
    @extend_schema(summary="Force-retire or un-retire a galaxy, with a reason (recorded; the opposite action "
                           "undoes it)", request=RetirementInput, responses={201: RetirementOverrideSerializer})
    def post(self, request: Request, slug: str, id_str: str) -> Response:
        data = parse(RetirementInput, request.data)
        override = services.set_retirement(
            workflow=get_object_or_404(Workflow, slug=slug), galaxy=get_object_or_404(Galaxy, id_str=id_str),
            retire=data["retire"], reason=data["reason"], user_id=request.user.pk)
        return Response(RetirementOverrideSerializer(override).data, status=status.HTTP_201_CREATED)


class ShadowBanApi(WorkbenchApi):
    @extend_schema(summary="Shadow-ban the volunteer behind a pseudonym of this galaxy's dossier: their counted "
                           "votes leave the tallies, new ones are not counted, they are not told",
                   request=ShadowBanInput, responses={201: inline_serializer("ShadowBanMade", {
                       "pseudonym": serializers.CharField(), "withdrawn_votes": serializers.IntegerField()})})
    def post(self, request: Request, slug: str, id_str: str) -> Response:
        data = parse(ShadowBanInput, request.data)
        ban = services.shadow_ban_volunteer(
            workflow=get_object_or_404(Workflow, slug=slug), galaxy=get_object_or_404(Galaxy, id_str=id_str),
            pseudonym=data["pseudonym"], reason=data["reason"], user_id=request.user.pk)
        return Response({"pseudonym": data["pseudonym"], "withdrawn_votes": ban.withdrawn_votes},
                        status=status.HTTP_201_CREATED)


class LiftShadowBanApi(WorkbenchApi):
    @extend_schema(summary="Lift the shadow ban of the volunteer behind a pseudonym of this galaxy's dossier: "
                           "their votes count again and the tallies they touch are recounted",
                   request=LiftShadowBanInput, responses={200: inline_serializer("ShadowBanLifted", {
                       "pseudonym": serializers.CharField(), "restored_votes": serializers.IntegerField()})})
    def post(self, request: Request, slug: str, id_str: str) -> Response:
        data = parse(LiftShadowBanInput, request.data)
        restored = services.lift_shadow_ban_volunteer(
            workflow=get_object_or_404(Workflow, slug=slug), galaxy=get_object_or_404(Galaxy, id_str=id_str),
            pseudonym=data["pseudonym"])
        return Response({"pseudonym": data["pseudonym"], "restored_votes": restored})


class ModelDashboardApi(WorkbenchApi):
    @extend_schema(summary="Every model version with hold-out metrics per question, calibration and its run's "
                           "learning curve (the model dashboard's data)",
                   responses=inline_serializer("ModelSummaries", {"workflow": serializers.CharField(),
                                                                  "versions": serializers.ListField()}))
    def get(self, request: Request, slug: str) -> Response:
        workflow = get_object_or_404(Workflow, slug=slug)
        return Response({"workflow": workflow.slug, "versions": selectors.model_summaries(workflow=workflow)})


class ActivateVersionApi(WorkbenchApi):
    @extend_schema(summary="Activate a model version (e.g. one the champion/challenger gate held back for review): "
                           "its scores become the queue priorities", request=None,
                   responses=inline_serializer("ActivatedVersion", {"workflow": serializers.CharField(),
                                                                    "number": serializers.IntegerField(),
                                                                    "is_active": serializers.BooleanField(),
                                                                    "activated_by": serializers.CharField()}))
    def post(self, request: Request, slug: str, number: int) -> Response:
        version = services.activate_version(workflow=get_object_or_404(Workflow, slug=slug), number=number,
                                            user_id=request.user.pk)
        return Response({"workflow": slug, "number": version.number, "is_active": version.is_active,
                         "activated_by": request.user.get_username()})


class VolunteerAgreementApi(WorkbenchApi):
    @extend_schema(summary="Per question: how often the volunteers' majority answer is the experts' (aggregate "
                           "over expert-labelled galaxies, with n)",
                   responses=inline_serializer("VolunteerAgreement", {"workflow": serializers.CharField(),
                                                                      "questions": serializers.ListField()}))
    def get(self, request: Request, slug: str) -> Response:
        workflow = get_object_or_404(Workflow, slug=slug)
        return Response({"workflow": workflow.slug, "questions": selectors.volunteer_agreement(workflow=workflow)})


class ExportListCreateApi(WorkbenchApi):
    @extend_schema(summary="The workflow's catalogue exports, newest first", responses=ExportJobSerializer(many=True))
    def get(self, request: Request, slug: str) -> Response:
        jobs = selectors.export_jobs(workflow=get_object_or_404(Workflow, slug=slug))
        return Response(ExportJobSerializer(jobs[:50], many=True).data)

    @extend_schema(summary="Export the catalogue in a worker (poll the job, then download its file)",
                   request=ExportInput, responses={202: ExportJobSerializer})
    def post(self, request: Request, slug: str) -> Response:
        data = parse(ExportInput, request.data)
        job = services.request_export(workflow=get_object_or_404(Workflow, slug=slug), fmt=data["format"],
                                      user_id=request.user.pk, model_version_number=data.get("model_version"))
        return Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ExportJobApi(WorkbenchApi):
    @extend_schema(summary="One export's state", responses=ExportJobSerializer)
    def get(self, request: Request, pk: int) -> Response:
        return Response(ExportJobSerializer(get_object_or_404(selectors.export_jobs(), pk=pk)).data)


class ExportDownloadApi(WorkbenchApi):
    @extend_schema(summary="Download a finished export's file (streamed from the storage)",
                   responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, pk: int) -> FileResponse:
        job = get_object_or_404(selectors.export_jobs(), pk=pk)
        if job.state != job.State.SUCCEEDED:
            raise ExportNotReady(f"export {job.pk} is {job.state}", field="state")
        return FileResponse(job.file.open("rb"), as_attachment=True, filename=Path(job.file.name).name,
                            content_type=EXPORT_CONTENT_TYPES[job.format])

"""Volunteer-facing API: the queue, submitting classifications, history, favourites and a
galaxy's tallies."""

from collections.abc import Callable

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import BadQueryParameter
from galaxies.models import Galaxy
from galaxies.serializers import GalaxyDetailSerializer
from workflows.models import Workflow
from workflows.selectors import workflow_settings

from .errors import UnknownWorkflow, VolunteerRequired
from .models import Classification
from .selectors import galaxy_tallies, next_subjects, volunteer_history
from .serializers import (
    ClassificationBatchInputSerializer,
    ClassificationInputSerializer,
    ClassificationOutputSerializer,
    FavouriteSerializer,
    QueueItemSerializer,
    classification_batch_input,
    classification_body,
    classification_input,
    queue_item_body,
)
from .services import BatchOutcome, Submission, set_favourite, submit_classification, submit_classifications
from .volunteers import COOKIE_NAME, HEADER, Volunteer, issue_anonymous, set_identity_cookie, volunteer_from_request

MAX_QUEUE_LIMIT = 50
DEFAULT_QUEUE_LIMIT = 10


def _workflow_or_404(slug: str) -> Workflow:
    workflow = workflow_settings(slug=slug)
    if workflow is None:
        raise UnknownWorkflow(f"no workflow '{slug}'", field="workflow")
    return workflow


def _query_int_list(request: Request, name: str) -> list[int]:
    try:
        return [int(x) for x in request.query_params.get(name, "").split(",") if x.strip()]
    except ValueError:
        raise BadQueryParameter("must be a comma-separated list of integer galaxy ids", field=name) from None


def _query_limit(request: Request) -> int:
    raw = request.query_params.get("limit", str(DEFAULT_QUEUE_LIMIT))
    try:
        limit = int(raw)
    except ValueError:
        raise BadQueryParameter(f"must be an integer, got '{raw}'", field="limit") from None
    if not 1 <= limit <= MAX_QUEUE_LIMIT:
        raise BadQueryParameter(f"must be between 1 and {MAX_QUEUE_LIMIT}, got {limit}", field="limit")
    return limit


def _voter(request: Request) -> Volunteer:
    """The volunteer a vote is counted for: votes without a server-issued identity are refused."""
    volunteer = volunteer_from_request(request)
    if volunteer is None:
        raise VolunteerRequired("anonymous votes need an identity from POST /api/volunteers/anonymous/ "
                                "(or sign in)", field="volunteer")
    return volunteer


class VolunteerIdentityApi(APIView):
    """Issues an anonymous volunteer's identity (a signed token, also set as an HttpOnly cookie).
    Only a new identity counts against the per-address rate; a request that already carries
    one (or a signed-in user) gets its own back."""

    throttle_scope = "volunteer"

    def get_throttles(self):
        return [] if volunteer_from_request(self.request) is not None else super().get_throttles()

    @extend_schema(summary="Obtain an anonymous volunteer identity (needed before anonymous votes count)",
                   request=None, responses={201: inline_serializer("VolunteerIdentity", {
                       "volunteer": serializers.CharField(), "token": serializers.CharField(allow_null=True)}),
                       200: inline_serializer("VolunteerIdentityKnown", {
                           "volunteer": serializers.CharField(), "token": serializers.CharField(allow_null=True)})})
    def post(self, request: Request) -> Response:
        volunteer = volunteer_from_request(request)
        if volunteer is not None:
            token = None if volunteer.user_id else request.COOKIES.get(COOKIE_NAME) or request.META.get(HEADER)
            return Response({"volunteer": volunteer.key, "token": token})
        volunteer, token = issue_anonymous()
        response = Response({"volunteer": volunteer.key, "token": token}, status=status.HTTP_201_CREATED)
        set_identity_cookie(response, token)
        return response


class NextSubjectsApi(APIView):
    throttle_scope = "next"

    @extend_schema(
        summary="Next galaxies for the current volunteer",
        parameters=[OpenApiParameter("limit", int, description=f"How many (1–{MAX_QUEUE_LIMIT}, default 10)"),
                    OpenApiParameter("exclude", str, description="Comma-separated galaxy ids already queued client-side")],
        responses=inline_serializer("NextSubjects", {
            "workflow": serializers.SlugField(), "workflow_version": serializers.IntegerField(),
            "workflow_active": serializers.BooleanField(), "results": QueueItemSerializer(many=True)}))
    def get(self, request: Request, slug: str) -> Response:
        workflow = _workflow_or_404(slug)
        limit = _query_limit(request)
        exclude = _query_int_list(request, "exclude")
        volunteer = volunteer_from_request(request)
        # Without an identity nobody's history applies: the queue as a new volunteer sees it.
        items = next_subjects(workflow=workflow, volunteer_key=volunteer.key if volunteer else "", limit=limit,
                              exclude_galaxy_ids=exclude) if workflow.is_active else []
        return Response({"workflow": workflow.slug, "workflow_version": workflow.version,
                         "workflow_active": workflow.is_active,
                         "results": [queue_item_body(item) for item in items]})


def _submission(data: dict) -> Submission:
    return Submission(workflow_slug=data["workflow"], galaxy_id_str=data["galaxy"], annotations=data["annotations"],
                      idempotency_key=data["idempotency_key"], started_at=data.get("started_at"),
                      finished_at=data.get("finished_at"), selection=data["selection"])


class ClassificationCreateApi(APIView):
    throttle_scope = "submit"

    @extend_schema(summary="Submit a classification (idempotent by idempotency_key)",
                   request=ClassificationInputSerializer,
                   responses={201: ClassificationOutputSerializer, 200: ClassificationOutputSerializer})
    def post(self, request: Request) -> Response:
        result = submit_classification(submission=_submission(classification_input(request.data)),
                                       volunteer=_voter(request),
                                       user_agent=request.headers.get("User-Agent", ""))
        body = classification_body(result.classification)
        return Response(body, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)


def _outcome_body(outcome: BatchOutcome) -> dict:
    if outcome.error is not None:
        return {"status": outcome.error.status_code, "error": outcome.error.as_dict()}
    return {"status": status.HTTP_201_CREATED if outcome.result.created else status.HTTP_200_OK,
            "classification": classification_body(outcome.result.classification)}


class ClassificationBatchCreateApi(APIView):
    throttle_scope = "submit"

    @extend_schema(
        summary="Submit several classifications at once (e.g. votes queued while offline)",
        description="Each item gets exactly the outcome a single submit would give it, in the order sent: "
                    "`status` 201 (stored), 200 (replay of a known idempotency key) or the 4xx with its `error`. "
                    "A body of the wrong shape is refused whole with 400.",
        request=ClassificationBatchInputSerializer, responses={200: dict})
    def post(self, request: Request) -> Response:
        outcomes = submit_classifications(
            submissions=[_submission(item) for item in classification_batch_input(request.data)],
            volunteer=_voter(request), user_agent=request.headers.get("User-Agent", ""))
        return Response({"results": [_outcome_body(outcome) for outcome in outcomes]})


class MyClassificationsApi(ListAPIView):
    serializer_class = ClassificationOutputSerializer

    def get_queryset(self):
        volunteer = volunteer_from_request(self.request)
        if volunteer is None:
            return Classification.objects.none()
        queryset = volunteer_history(volunteer_key=volunteer.key)
        if self.request.query_params.get("favourites") in ("1", "true"):
            queryset = queryset.filter(is_favourite=True)
        return queryset


class FavouriteApi(APIView):
    @extend_schema(request=FavouriteSerializer, responses=ClassificationOutputSerializer)
    def put(self, request: Request, pk: int) -> Response:
        serializer = FavouriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        volunteer = volunteer_from_request(request)
        try:
            if volunteer is None:
                raise Classification.DoesNotExist
            classification = set_favourite(classification_id=pk, volunteer=volunteer,
                                           is_favourite=serializer.validated_data["is_favourite"])
        except Classification.DoesNotExist:
            raise NotFound("no such classification of yours") from None
        return Response(ClassificationOutputSerializer(classification).data)


class GalaxyDetailApi(APIView):
    """A galaxy with its tallies per workflow, each with the active model's prediction.

    Tallies live here; predictions belong to retraining, which sits above classifications, so
    this view cannot import them: it takes `predictions` (called with galaxy_id=..., returning {workflow id: block}),
    and the URL configuration, which sees every app, passes retraining's selector. Without
    one (an app set without retraining) every block is null."""

    predictions: Callable[..., dict[int, dict]] = staticmethod(lambda *, galaxy_id: {})

    @extend_schema(summary="A galaxy with vote counts and fractions per question, per workflow",
                   parameters=[OpenApiParameter("workflow", str, description="Only this workflow's votes")],
                   responses=GalaxyDetailSerializer)
    def get(self, request: Request, id_str: str) -> Response:
        galaxy = get_object_or_404(Galaxy, id_str=id_str)
        if slug := request.query_params.get("workflow"):
            get_object_or_404(Workflow, slug=slug)
        body = GalaxyDetailSerializer(galaxy).data
        predictions = self.predictions(galaxy_id=galaxy.pk)
        body["workflows"] = [{**{k: v for k, v in tally.items() if k != "workflow_id"},
                              "prediction": predictions.get(tally["workflow_id"])}
                             for tally in galaxy_tallies(galaxy=galaxy, workflow_slug=slug)]
        return Response(body)

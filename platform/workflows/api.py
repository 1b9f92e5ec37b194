from rest_framework.generics import ListAPIView, RetrieveAPIView

from .models import Workflow
from .serializers import WorkflowSerializer


class WorkflowListApi(ListAPIView):
    queryset = Workflow.objects.all()
    serializer_class = WorkflowSerializer


class WorkflowDetailApi(RetrieveAPIView):
    queryset = Workflow.objects.all()
    serializer_class = WorkflowSerializer
    lookup_field = "slug"

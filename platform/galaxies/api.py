"""Galaxies as volunteers see them (the detail with tallies is classifications.api.GalaxyDetailApi)."""

from rest_framework.generics import ListAPIView

from .models import Galaxy
from .serializers import GalaxySerializer


class GalaxyListApi(ListAPIView):
    queryset = Galaxy.objects.all()
    serializer_class = GalaxySerializer

from rest_framework import serializers

from .models import Workflow


class WorkflowSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = ["slug", "name", "description", "version", "retirement_count", "random_fraction",
                  "early_retirement", "is_active", "tree"]

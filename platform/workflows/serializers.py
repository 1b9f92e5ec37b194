from rest_framework import serializers

from .models import Workflow


class WorkflowSerializer(serializers.ModelSerializer):
    tree = serializers.SerializerMethodField(help_text="The decision tree, each answer with its column and index.")

    class Meta:
        model = Workflow
        fields = ["slug", "name", "description", "version", "retirement_count", "random_fraction",
                  "early_retirement", "retirement_agreement", "is_active", "tree"]

    def get_tree(self, workflow: Workflow) -> dict:
        return workflow.decision_tree.to_dict(with_columns=True)

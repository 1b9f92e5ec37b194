"""Install the two shipped decision trees as workflows: Galaxy Zoo DECaLS DR5 (the
volunteers' default) and Galaxy Zoo 2."""

from django.db import migrations

from classifier.tree import DecisionTree

SHIPPED = [("gz-decals-dr5", "decals_dr5", True), ("gz2", "gz2", True)]


def install(apps, schema_editor):
    Workflow = apps.get_model("workflows", "Workflow")
    WorkflowVersion = apps.get_model("workflows", "WorkflowVersion")
    for slug, tree_name, active in SHIPPED:
        if Workflow.objects.filter(slug=slug).exists():
            continue
        tree = DecisionTree.load(tree_name)
        workflow = Workflow.objects.create(slug=slug, name=tree.title, description=tree.description,
                                           tree=tree.to_dict(), tree_hash=tree.version_hash, version=1,
                                           retirement_count=40, random_fraction=0.2, is_active=active)
        WorkflowVersion.objects.create(workflow=workflow, number=1, tree=workflow.tree, tree_hash=workflow.tree_hash)


def uninstall(apps, schema_editor):
    apps.get_model("workflows", "Workflow").objects.filter(slug__in=[s for s, _, _ in SHIPPED]).delete()


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]

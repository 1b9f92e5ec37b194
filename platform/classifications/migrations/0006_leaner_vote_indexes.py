"""Two indexes fewer per vote: the status rows' workflow index (unique_subject_status leads with
the workflow) and anonymous votes' entries in the user index (now partial: user_id IS NOT NULL)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('classifications', '0005_vote_count_index'),
        ('galaxies', '0002_galaxy_healpix'),
        ('workflows', '0002_shipped_trees'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name='classification',
            index=models.Index(condition=models.Q(('user__isnull', False)), fields=['user'], name='classification_user'),
        ),
        migrations.AlterField(
            model_name='classification',
            name='user',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='classifications', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='subjectstatus',
            name='workflow',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='subject_statuses', to='workflows.workflow'),
        ),
    ]

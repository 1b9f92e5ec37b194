"""The workflows the platform ships with: their slugs (the one place they are spelled) and the
classifier tree each one runs."""

DECALS_DR5 = "gz-decals-dr5"
GZ2 = "gz2"

# slug -> shipped tree name in classifier/trees/
SHIPPED_WORKFLOWS: dict[str, str] = {DECALS_DR5: "decals_dr5", GZ2: "gz2"}

# The workflow "Start classifying" opens when it is active: the demo pack's real votes and the
# shipped default model are for the GZ2 tree.
DEFAULT_WORKFLOW = GZ2

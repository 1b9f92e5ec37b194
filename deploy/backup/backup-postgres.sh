#!/usr/bin/env bash
# Dump the platform's PostgreSQL database to a custom-format archive plus a manifest of row
# counts per table, which restore-postgres.sh checks after restoring.
#   deploy/backup/backup-postgres.sh [DATABASE_URL] [OUTPUT_DIR]
# Defaults: $DATABASE_URL; ./ . In the compose stack this folder is /backup in the postgres
# container:  docker compose -f deploy/compose.yaml exec postgres /backup/backup-postgres.sh
set -euo pipefail

url="${1:-${DATABASE_URL:-postgres://${POSTGRES_USER:-postgres}@localhost/${POSTGRES_DB:-postgres}}}"
out_dir="${2:-.}"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
archive="$out_dir/galaxy-$stamp.dump"
mkdir -p "$out_dir"

# One snapshot for the dump and the counts: pg_dump exports a consistent snapshot itself; the
# counts are taken right before and compared after, so writes in between are reported.
counts() {
  psql "$url" -v ON_ERROR_STOP=1 -Atq -c "
    SELECT format('SELECT %L || '' '' || count(*) FROM %I.%I;', table_name, table_schema, table_name)
    FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
    ORDER BY table_name" | psql "$url" -v ON_ERROR_STOP=1 -Atq
}

before="$(counts)"
pg_dump --format=custom --compress=6 --no-owner --no-privileges --file="$archive.partial" "$url"
after="$(counts)"
if [[ "$before" != "$after" ]]; then
  echo "warning: rows changed during the dump; the manifest holds the counts at its end" >&2
fi
mv "$archive.partial" "$archive"
printf '%s\n' "$after" > "$archive.counts"
sha256sum "$archive" > "$archive.sha256"
echo "$archive"

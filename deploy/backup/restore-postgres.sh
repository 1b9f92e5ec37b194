#!/usr/bin/env bash
# Restore a backup-postgres.sh archive into an EMPTY database and verify it: the archive's
# checksum first, then every table's row count against the archive's manifest.
#   deploy/backup/restore-postgres.sh ARCHIVE TARGET_DATABASE_URL
# Create the target first (createdb); restoring over a live database is refused. Exit codes:
# 0 restored and verified, 1 usage or restore error, 2 verification failed.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 ARCHIVE TARGET_DATABASE_URL" >&2
  exit 1
fi
archive="$1"
url="$2"

if [[ -f "$archive.sha256" ]]; then
  (cd "$(dirname "$archive")" && sha256sum --quiet --check "$(basename "$archive").sha256") || {
    echo "checksum mismatch: $archive is damaged" >&2; exit 2; }
fi

tables="$(psql "$url" -v ON_ERROR_STOP=1 -Atq -c \
  "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")"
if [[ "$tables" != "0" ]]; then
  echo "refusing to restore: the target database already has $tables tables in public" >&2
  exit 1
fi

pg_restore --exit-on-error --single-transaction --no-owner --no-privileges --dbname="$url" "$archive"

if [[ -f "$archive.counts" ]]; then
  restored="$(psql "$url" -v ON_ERROR_STOP=1 -Atq -c "
    SELECT format('SELECT %L || '' '' || count(*) FROM %I.%I;', table_name, table_schema, table_name)
    FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
    ORDER BY table_name" | psql "$url" -v ON_ERROR_STOP=1 -Atq)"
  if ! diff <(printf '%s\n' "$restored") "$archive.counts" >&2; then
    echo "row counts differ from the backup's manifest (< restored, > backup)" >&2
    exit 2
  fi
  echo "restored $(wc -l < "$archive.counts") tables; row counts match the manifest"
else
  echo "restored (no manifest to verify against)"
fi

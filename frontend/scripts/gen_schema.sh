#!/usr/bin/env bash
# Regenerates the API contract the portal is typed against: the OpenAPI schema from Django
# (drf-spectacular), then its TypeScript types (openapi-typescript). Both outputs are committed;
# tests/frontend/test_api_schema.py fails while either differs from what this script writes.
# The schema is taken on the embedded defaults (SQLite): integer limits of model fields follow the
# database backend, so one engine is fixed to keep the file the same on every machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
env -u DATABASE_URL HEALTHHASH_VAR_DIR="$scratch" \
  .venv/bin/python manage.py spectacular --validate --file frontend/src/api/schema.yaml
cd frontend
node_modules/.bin/openapi-typescript src/api/schema.yaml -o src/api/schema.d.ts

"""/v1/audit/* (auditor): reserved for the audit export, checkpoints and proofs.

`GET /v1/audit/export` (streamed NDJSON), `/v1/audit/checkpoints` and
`/v1/audit/proof/{position}` are added to this router by the audit work; the prefix and
the auditor-only rule are fixed here so they cannot be forgotten.
"""

from __future__ import annotations

from fastapi import APIRouter

from interfaces.http.auth import AUDITOR

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=AUDITOR)

"""Rule policy pages for admins (filled in on the policy service layer)."""

from __future__ import annotations

from fastapi import APIRouter

from tracehound.server.dashboard.web import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False)

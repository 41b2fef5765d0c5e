from __future__ import annotations

from ninja import NinjaAPI

from accounts.auth import api_auth
from knowledge.api import router as knowledge_router

api = NinjaAPI(
    title="expertsite API",
    version="1",
    auth=api_auth,
    description="Knowledge base: upload, list, status, delete and search. Bearer token or session.",
)
api.add_router("/", knowledge_router)

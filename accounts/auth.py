"""Bearer tokens for the HTTP APIs, beside the browser's session."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth

from .selectors import user_for_api_token


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        user = user_for_api_token(raw=token)
        if user is not None:
            request.user = user  # selectors read request.user, as for the session
        return user


# Token first (scripts, tools), then the session (the pages' own fetch calls, CSRF-checked).
api_auth = [ApiTokenAuth(), django_auth]

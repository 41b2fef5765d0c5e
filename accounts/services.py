from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from .models import ApiToken, Membership, Role, Team


@transaction.atomic
def team_create(*, name: str, owner: User | None = None, slug: str = "") -> Team:
    team = Team.objects.create(name=name, slug=slug or slugify(name)[:60])
    if owner is not None:
        Membership.objects.create(team=team, user=owner, role=Role.ADMIN)
    return team


def membership_set(*, team: Team, user: User, role: Role) -> Membership:
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    return membership


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Returns the row and the raw token, which is shown once and never stored."""
    raw = ApiToken.generate()
    token = ApiToken.objects.create(user=user, name=name, prefix=raw[:10], digest=ApiToken.hash(raw))
    return token, raw

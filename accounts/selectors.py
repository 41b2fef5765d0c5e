from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet
from django.utils import timezone

from .models import ROLE_RANK, ApiToken, Membership, Role, Team


def team_list_for_user(*, user: User | AnonymousUser) -> QuerySet[Team]:
    if not user.is_authenticated:
        return Team.objects.none()
    return Team.objects.filter(memberships__user=user)


def team_role_for_user(*, user: User | AnonymousUser, team: Team) -> Role | None:
    if not user.is_authenticated:
        return None
    role = Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    return Role(role) if role else None


def role_at_least(role: Role | str | None, needed: Role) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[needed]


def user_for_api_token(*, raw: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=ApiToken.hash(raw), user__is_active=True)
        .first()
    )
    if token is None:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used=timezone.now())
    return token.user

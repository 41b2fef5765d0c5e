from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.management.base import CommandError
from django.http import Http404

from knowledge.models import Collection
from knowledge.selectors import get_collection_by_slug_for_user


def resolve_user(username: str | None) -> User | None:
    if not username:
        return None
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"no user '{username}'")
    return user


def resolve_collection(
    *, slug: str, team_slug: str | None, user: User | None, write: bool = False
) -> Collection:
    """With --user, access is checked as for that person; without, the operator sees all."""
    try:
        if user is not None:
            return get_collection_by_slug_for_user(user, slug, team_slug=team_slug, write=write)
    except Http404 as exc:
        raise CommandError(str(exc)) from None
    except PermissionError as exc:
        raise CommandError(str(exc)) from None
    qs = Collection.objects.filter(slug=slug)
    if team_slug:
        qs = qs.filter(team__slug=team_slug)
    found = list(qs[:2])
    if not found:
        raise CommandError(f"no collection '{slug}'" + (f" in team '{team_slug}'" if team_slug else ""))
    if len(found) > 1:
        raise CommandError(f"several teams have a collection '{slug}': add --team")
    return found[0]

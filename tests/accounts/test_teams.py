from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Role
from accounts.selectors import role_at_least, team_list_for_user, team_role_for_user, user_for_api_token
from accounts.services import api_token_create


@pytest.mark.django_db
def test_people_see_only_their_own_teams(alice, charlie, acme, globex) -> None:
    assert list(team_list_for_user(user=alice)) == [acme]
    assert list(team_list_for_user(user=charlie)) == [globex]


@pytest.mark.django_db
def test_roles_rank_member_below_editor_below_admin(alice, bob, acme) -> None:
    assert team_role_for_user(user=alice, team=acme) == Role.ADMIN
    assert team_role_for_user(user=bob, team=acme) == Role.MEMBER
    assert role_at_least(Role.ADMIN, Role.EDITOR)
    assert not role_at_least(Role.MEMBER, Role.EDITOR)
    assert not role_at_least(None, Role.MEMBER)


@pytest.mark.django_db
def test_api_tokens_are_stored_hashed_and_resolve_to_their_user(alice) -> None:
    token, raw = api_token_create(user=alice, name="laptop")
    assert raw not in token.digest
    assert user_for_api_token(raw=raw) == alice
    assert user_for_api_token(raw=raw + "x") is None


@pytest.mark.django_db
def test_home_requires_login_and_shows_the_teams(alice, acme) -> None:
    client = Client()
    assert client.get("/").status_code == 302
    client.login(username="alice", password="alice-pass-123")
    assert "Acme" in client.get("/").content.decode()

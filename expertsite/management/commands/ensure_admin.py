from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin account once; print its credentials the one time they are made."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = settings.ADMIN_USERNAME
        if User.objects.filter(username=username).exists():
            self.stdout.write(f"admin account: {username} (exists)")
            return
        password = settings.ADMIN_PASSWORD or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        shown = password if not settings.ADMIN_PASSWORD else "(from ADMIN_PASSWORD)"
        self.stdout.write(self.style.SUCCESS(f"admin account created: {username} / {shown}"))
        self.stdout.write("  shown once; change it in the admin site, or set ADMIN_PASSWORD")

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from chat import openai_api

from . import dashboard_views, views
from .api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/data.json", dashboard_views.dashboard_json, name="dashboard_data"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("v1/chat/completions", openai_api.chat_completions, name="openai-chat"),
    path("v1/models", openai_api.models, name="openai-models"),
    path("knowledge/", include("knowledge.urls")),
    path("chat/", include("chat.urls")),
    path("training/", include("training.urls")),
]

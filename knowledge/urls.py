from __future__ import annotations

from django.urls import path

from . import views

app_name = "knowledge"
urlpatterns = [
    path("", views.collection_list, name="collections"),
    path("<int:pk>/", views.collection_detail, name="collection"),
    path("<int:pk>/delete", views.collection_delete, name="collection_delete"),
    path("documents/<int:pk>/", views.document_detail, name="document"),
    path("documents/<int:pk>/file", views.document_file, name="document_file"),
]

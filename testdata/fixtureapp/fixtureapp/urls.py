from django.urls import path

from fixtureapp.polls import views

urlpatterns = [
    path("", views.new_poll, name="new"),
    path("poll/<slug:slug>/", views.poll_detail, name="detail"),
]

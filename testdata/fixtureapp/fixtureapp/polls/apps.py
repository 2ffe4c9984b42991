from django.apps import AppConfig


class PollsConfig(AppConfig):
    name = "fixtureapp.polls"
    label = "polls"

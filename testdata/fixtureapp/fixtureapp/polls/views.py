from django import forms
from django.shortcuts import get_object_or_404, redirect, render

from .models import Poll


class PollForm(forms.ModelForm):
    class Meta:
        model = Poll
        fields = ["title", "slug"]


def new_poll(request):
    form = PollForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        poll = form.save()
        return redirect("detail", slug=poll.slug)
    return render(request, "polls/new.html", {"form": form})


def poll_detail(request, slug):
    poll = get_object_or_404(Poll, slug=slug)
    return render(request, "polls/detail.html", {"poll": poll})

"""Render a page or, for htmx, only its fragment: the one way the dashboard does it."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.cache import patch_vary_headers


def render_fragment(
    request: HttpRequest, template: str, fragment: str, context: dict, status: int = 200
) -> HttpResponse:
    """The whole page, or only its `{% partialdef fragment %}` when htmx asks.

    One URL answers with two bodies, so the response says `Vary: HX-Request`: without
    it the browser's cache hands the fragment back to Back, unstyled and without the
    navigation. htmx's history restore (when its own history cache misses) puts the
    answer in place of the whole body, so it gets the whole page.
    """
    partial = request.htmx and not request.htmx.history_restore_request
    name = f"{template}#{fragment}" if partial else template
    response = render(request, name, context, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response

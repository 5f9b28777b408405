"""What webhooks cost the widget's display call: `record_display` timed in-process.

Three ways in one run, on PostgreSQL: the webhook receivers disconnected (the cost
before webhooks), connected with no endpoint (one query after commit), and with one
subscribed endpoint (a Delivery row and a queued task after commit). Sending happens in
the worker, so it is not part of any of them.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/refiner_bench_webhooks \
        .venv/bin/python bench/webhooks.py
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_database, setup_django, table  # noqa: E402

CALLS = 300


def main() -> None:
    ensure_database()
    setup_django()
    from django.core.management import call_command
    from django.utils import timezone

    from refiner.models import Workspace
    from segments.models import Contact
    from surveys.models import Survey
    from surveys.services import record_display
    from surveys.signals import survey_displayed
    from webhooks.models import Endpoint
    from webhooks.receivers import on_survey_displayed

    call_command("migrate", verbosity=0)
    workspace = Workspace.objects.create(name="Webhooks bench")
    survey = Survey.objects.create(workspace=workspace, name="NPS", status=Survey.LIVE)
    contacts = [
        Contact.objects.create(workspace=workspace, user_id=f"bench-{n}") for n in range(CALLS)
    ]

    def per_call() -> float:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for contact in contacts:
                record_display(survey=survey, contact=contact, now=timezone.now())
            best = min(best, (time.perf_counter() - start) / CALLS)
        return best * 1000

    survey_displayed.disconnect(dispatch_uid="webhooks-on_survey_displayed")
    before = per_call()
    survey_displayed.connect(on_survey_displayed, dispatch_uid="webhooks-on_survey_displayed")
    no_endpoint = per_call()
    Endpoint.objects.create(workspace=workspace, url="https://hooks.example.com/x",
                            events=["survey.displayed"])  # fmt: skip
    one_endpoint = per_call()
    workspace.delete()
    print(
        table(
            ["record_display", "ms per call", "vs. no receiver"],
            [
                ["receivers disconnected", f"{before:.2f}", "1.00×"],
                ["no endpoint", f"{no_endpoint:.2f}", f"{no_endpoint / before:.2f}×"],
                ["one subscribed endpoint", f"{one_endpoint:.2f}", f"{one_endpoint / before:.2f}×"],
            ],
        )
    )


if __name__ == "__main__":
    main()

"""`cost --check`'s alert when a day's spend passed budgets.daily_usd: a GitHub annotation and, when
PROMPTCI_SPEND_WEBHOOK names one, a Slack-compatible webhook POST ({"text": ...}) naming the top spenders."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Mapping

from promptci.cost.report import CostReport
from promptci.cost.totals import format_usd

WEBHOOK_VARIABLE = "PROMPTCI_SPEND_WEBHOOK"  # the URL is a secret (it lets anyone post): never printed
WEBHOOK_TIMEOUT_S = 10.0


def alert_text(report: CostReport) -> str:
    """One message: the latest day over budget, by how much, and who spent it (by prompt, branch and actor)."""
    day, spent = report.days_over[-1]
    limit = report.daily_usd or 0.0
    lines = [f"promptci: {day} spent {format_usd(spent)}, over the daily budget of {format_usd(limit)} "
             f"by {format_usd(spent - limit)}"]
    for dimension, top in report.top_spenders:
        named = ", ".join(f"{name or '(none)'} {format_usd(usd)}" for name, usd in top)
        lines.append(f"top by {dimension}: {named}")
    return "\n".join(lines)


def github_annotation(text: str) -> str:
    escaped = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return f"::error title=promptci daily budget::{escaped}"


def post_webhook(text: str, environ: Mapping[str, str] | None = None) -> str | None:
    """POST {"text": text} to the webhook named by PROMPTCI_SPEND_WEBHOOK; None when it took it (or none is set),
    else why not, without the URL."""
    url = (os.environ if environ is None else environ).get(WEBHOOK_VARIABLE, "").strip()
    if not url:
        return None
    if not url.startswith(("https://", "http://")):
        return f"${WEBHOOK_VARIABLE} is not an http(s) URL; the alert was not posted"
    request = urllib.request.Request(url, data=json.dumps({"text": text}).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as error:
        return f"the webhook in ${WEBHOOK_VARIABLE} answered HTTP {error.code}; the alert was not posted"
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        return f"the webhook in ${WEBHOOK_VARIABLE} could not be reached ({type(reason).__name__}); not posted"
    return None

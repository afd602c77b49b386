"""The funder report as one self-contained HTML page: inline CSS, inline SVG charts, no script, no network.

Every figure on the page is an element with ``data-figure`` naming what it is (``weekly:2026-W27``,
``version:1.2.0``...), holding the published number or the word ``hidden`` (``unknown`` for new installs that
cannot be known): a reader, a test or a script can check each one against the open data.
"""

from __future__ import annotations

import base64
import datetime
import json
from html import escape
from importlib import resources

from consentry_server._version import __version__
from consentry_server.public.funder_report.charts import bar_chart, column_chart
from consentry_server.public.funder_report.figures import Distribution, Methods, ReportFigures
from consentry_server.publish.certificates import Period

__all__ = ["certificate_text", "render"]

_FIELDS = {"app_version": ("versions", "Versions"), "system.os": ("os", "Operating systems")}


def certificate_text(document: dict[str, object]) -> str:
    """The certificate file's text, exactly as ``consentry-server certify --output`` writes it."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _figure(key: str, value: int | None, *, missing: str = "hidden") -> str:
    if value is None:
        return f'<span class="hidden-figure" data-figure="{escape(key)}">{missing}</span>'
    return f'<span data-figure="{escape(key)}">{value:,}</span>'


def _card(key: str, value: int | None, what: str) -> str:
    number = _figure(key, value)
    return f'<div class="card"><span class="number">{number}</span><span class="what">{escape(what)}</span></div>'


def _table(headers: list[str], rows: list[list[str]], numeric: set[int], table_id: str) -> str:
    head = "".join(
        f'<th{" class=n" if i in numeric else ""} scope="col">{escape(h)}</th>' for i, h in enumerate(headers)
    )
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _headline(certificate: dict[str, object], plugin: str | None) -> str:
    figures = certificate["figures"]
    assert isinstance(figures, dict)  # noqa: S101 - made by certificate_figures
    weekly = figures["weekly_active_installs"]
    cards = [
        _card("mean", weekly["mean"], "weekly active installs, mean over the published weeks"),
        _card("peak", weekly["peak"], "weekly active installs, highest week"),
        _card("weeks_published", weekly["weeks_published"], f"of the period's {weekly['weeks']} ISO weeks published"),
    ]
    if plugin is None:
        cards.append(_card("new_installs", figures.get("new_installs"), "new installs in the period"))
    months = figures["monthly_active_installs"]["by_month"]
    table = ""
    if months:
        rows = [[escape(m["month"]), _figure(f"monthly:{m['month']}", m["installs"])] for m in months]
        table = "<h3>Monthly active installs</h3>" + _table(["Month", "Installs"], rows, {1}, "monthly-table")
        table += (
            '<p class="note">The largest weekly count among the month\'s weeks: install ids change every week, '
            "so this is a lower bound of the installs active in the month.</p>"
        )
    return f'<div class="cards" id="headline">{"".join(cards)}</div>{table}'


def _weekly(figures: ReportFigures, plugin: str | None, k: int) -> str:
    weeks = figures.weeks
    chart = column_chart(
        "chart-weekly", "Weekly active installs", [w.label for w in weeks], [w.installs for w in weeks], "installs"
    )
    headers = ["ISO week", "Starts", "Active installs"] + ([] if plugin else ["New installs"])
    rows = []
    for week in weeks:
        row = [escape(week.label), week.start.isoformat(), _figure(f"weekly:{week.label}", week.installs)]
        if plugin is None:
            missing = "unknown" if week.new_unknown and week.new_installs is None else "hidden"
            row.append(_figure(f"new:{week.label}", week.new_installs, missing=missing))
        rows.append(row)
    legend = (
        '<p class="note"><span class="legend shown"></span>published &nbsp; <span class="legend"></span>hidden: '
        f"fewer than {k} installs (or none) that week, so no number was published</p>"
    )
    return f"<figure><figcaption>Weekly active installs</figcaption>{chart}{legend}</figure>" + _table(
        headers, rows, {2, 3}, "weekly-table"
    )


def _distribution(distribution: Distribution, plugin: str | None, k: int) -> str:
    short, title = _FIELDS.get(distribution.field, ("plugin-versions", f"Versions of {plugin}"))
    if not distribution.counts:
        return (
            f'<h3>{escape(title)}</h3><p class="note" id="{short}-none">No value reached {k} installs in any week.</p>'
        )
    caption = f"{title}, installs in the week {distribution.week}"
    chart = bar_chart(f"chart-{short}", caption, distribution.counts, "installs")
    key = {"versions": "version", "os": "os"}.get(short, "plugin-version")
    rows = [[escape(value), _figure(f"{key}:{value}", count)] for value, count in distribution.counts]
    return f"<figure><figcaption>{escape(caption)}</figcaption>{chart}</figure>" + _table(
        ["Value", "Installs"], rows, {1}, f"{short}-table"
    )


def _features(figures: ReportFigures, k: int) -> str:
    if not figures.features:
        return f'<p class="note" id="features-none">No feature was used by {k} installs or more in any week.</p>'
    items = [(feature.name, feature.peak_installs) for feature in figures.features]
    chart = bar_chart("chart-features", "Top features: most installs using each in one week", items, "installs")
    rows = [
        [
            f"<code>{escape(f.name)}</code>"
            + (f'<br><span class="note">{escape(f.purpose)}</span>' if f.purpose else ""),
            _figure(f"feature-peak:{f.name}", f.peak_installs) + f' <span class="note">({escape(f.peak_week)})</span>',
            _figure(f"feature-total:{f.name}", f.total),
            _figure(f"feature-weeks:{f.name}", f.weeks_published),
        ]
        for f in figures.features
    ]
    headers = ["Feature", "Most installs in a week", "Times used (published weeks)", "Weeks published"]
    note = (
        '<p class="note">"Times used" adds up the weekly totals that were published; a week in which fewer than '
        f"{k} installs used the feature is left out, never estimated. Each install adds at most "
        f"{figures.methods.contribution_cap} to a feature's total per day.</p>"
    )
    return (
        "<figure><figcaption>Top features: most installs using each in one week</figcaption>"
        f"{chart}</figure>{_table(headers, rows, {1, 2, 3}, 'features-table')}{note}"
    )


def _privacy(methods: Methods, published_at: str) -> str:
    parts = [
        (
            f"<p>Figures come from the publication of {escape(published_at)}: the aggregates the server published, "
            "never its raw reports. <strong>Reporter threshold k = "
            f'<span data-figure="k">{methods.threshold}</span></strong>: a number resting on fewer than k distinct '
            "installs is not published, and numbers that could be subtracted from a published total to reveal a "
            "smaller group are hidden too (complementary suppression). Such numbers are marked <em>hidden</em> here; "
            "they are never estimated, and never drawn as zero.</p>"
        )
    ]
    if methods.noise is None:
        parts.append(
            "<p><strong>Noise:</strong> none; the published numbers are exact counts. The privacy ledger therefore "
            "states no finite cumulative epsilon (exact numbers carry no differential-privacy bound); k and "
            "suppression are the protection.</p>"
        )
    else:
        epsilon = methods.noise.get("epsilon_per_number")
        cumulative = (
            "unbounded (exact numbers were published too)"
            if methods.cumulative_epsilon is None
            else (f'<span data-figure="cumulative_epsilon">{methods.cumulative_epsilon:g}</span>')
        )
        parts.append(
            f"<p><strong>Noise:</strong> {escape(str(methods.noise.get('mechanism', '')))}, epsilon "
            f'<span data-figure="epsilon">{escape(str(epsilon))}</span> per published number, calibrated to what one '
            "install can change it by. The numbers shown are the noisy published ones. Cumulative epsilon of this "
            f"application over the {methods.releases} release(s) in the privacy ledger (basic sequential "
            f"composition): {cumulative}.</p>"
        )
    parts.append(
        f"<p><strong>Contribution caps:</strong> one install counts at most {methods.reporter_cap} time in a count of "
        f"installs, and adds at most {methods.contribution_cap} to one feature's total per day.</p>"
        f"<p><strong>Retention:</strong> raw reports are deleted by the server after {methods.raw_retention_days} "
        f"days, request logs after {methods.log_retention_days} days; the aggregates are kept. No IP address is "
        "stored: where a country is derived from the connecting address, the address is then forgotten.</p>"
    )
    return "".join(parts)


def _counting(app: str, plugin: str | None, figures: ReportFigures) -> str:
    subject = (
        f"installs of {escape(app)} reporting the plugin {escape(plugin)}" if plugin else f"installs of {escape(app)}"
    )
    text = [
        (
            "<p><strong>How installs are counted.</strong> Each install sends, with its user's consent, one report per "
            "level and day (or week) it was used. It is identified by a reporter id that is a keyed hash of a random "
            "local secret, the application and the ISO week: stable within a week, so an install counts once per "
            "week, and unlinkable across weeks and applications. Weekly active installs are the distinct "
            f"{subject} in an ISO week (a week belongs to the period its Thursday falls in), the largest count among "
            "the levels, since an install that agreed to a higher level also reports at the lower ones."
        ),
    ]
    if plugin:
        text.append(" A plugin's installs are summed over its versions (an install that changed version within a "
                    "week counts once per version).")  # fmt: skip
    else:
        text.append(
            " New installs are installs whose first report fell in the period. Reports received over "
            "OpenTelemetry (OTLP) or a seed-format adapter (3D Slicer's Telemetry extension, dfx) carry no lasting "
            "install id: each export counts as one reporter (runs, not installs), and whether it came from a new "
            "install is <em>unknown</em>, so new installs of any week holding such reports are shown as unknown."
        )
        if figures.unknown_weeks:
            text.append(
                f' In <span data-figure="unknown_weeks">{figures.unknown_weeks}</span> week(s) of this period '
                f"{escape(app)} received such reports: its counts there include exports, not only installs."
            )
    text.append("</p>")
    return "".join(text)


def _levels(methods: Methods) -> str:
    rows = []
    for level in methods.levels:
        collected = [
            ("system: " + ", ".join(level.system)) if level.system else "",
            ("dependencies: " + ", ".join(level.dependencies)) if level.dependencies else "",
            ", ".join(level.features),
            f"{level.events} event(s)" if level.events else "",
            f"{level.commands} command(s)" if level.commands else "",
        ]
        rows.append([
            f"<strong>{escape(level.name)}</strong>",
            escape(level.description),
            escape("; ".join(part for part in collected if part) or "nothing"),
        ])  # fmt: skip
    table = _table(["Level", "What the user agrees to", "Fields and counts"], rows, set(), "levels-table")
    catalogue = [[f"<code>{escape(e['name'])}</code>", escape(e["level"]), escape(e["purpose"])]
                 for e in [*methods.events, *methods.commands]]  # fmt: skip
    events = _table(["Event or command", "Level", "Purpose"], catalogue, set(), "events-table") if catalogue else ""
    policy = (
        f" Plugins are reported by name under the policy <code>{escape(methods.plugin_policy)}</code>."
        if (methods.plugin_policy)
        else ""
    )
    return (
        "<p>The application's manifest is the complete list of what its installs may send; the server refuses "
        f"anything outside it. Nothing is sent without the user's consent, at the level the user chose.{policy}</p>"
        f"{table}<h3>Everything that may be counted</h3>{events}"
    )


def _certificate(document: dict[str, object], key: dict[str, str], app: str, plugin: str | None, label: str) -> str:
    text = certificate_text(document)
    name = f"{app}-{plugin}-{label}" if plugin else f"{app}-{label}"
    data = base64.b64encode(text.encode()).decode()
    key_json = json.dumps(key, indent=2, sort_keys=True)
    snippet = (
        "import base64, json\n"
        "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey\n\n"
        f'document = json.load(open("{name}.json", encoding="utf-8"))\n'
        'signed = json.dumps(document["certificate"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)\n'
        f'key = Ed25519PublicKey.from_public_bytes(base64.b64decode("{key["key"]}"))\n'
        'key.verify(base64.b64decode(document["signature"]), signed.encode("utf-8"))  # raises InvalidSignature\n'
        'print("valid")\n'
    )
    return f"""
<p>The headline figures above are those of the usage certificate below, signed by the server with its Ed25519 key
(key id <code id="certificate-key-id">{escape(key["key_id"])}</code>). Anyone can check offline that it was signed
by that key and not changed since, by one byte of its content.</p>
<h3>Check it offline</h3>
<ol id="verify-steps">
<li>Save the certificate below, exactly as shown, as <code>{escape(name)}.json</code>
<a class="screen-only" id="certificate-download" download="{escape(name)}.json"
href="data:application/json;base64,{data}">(download it)</a>.</li>
<li>Take the server's public key from a source you trust, not from this report: the server publishes it at
<code>/api/v1/certificates/key</code>, the project on its website. Its key id must be
<code>{escape(key["key_id"])}</code>; the key as it was when this report was made is shown below.</li>
<li>Install the verifier: <code>pip install 'consentry[verify]'</code></li>
<li>Run <code id="verify-command">consentry verify {escape(name)}.json --key {escape(key["key"])}</code>.
Exit code 0 and the figures printed: valid. 8: not authentic (changed, or signed by another key).
9: not a certificate, or not a key.</li>
</ol>
<p>Without Consentry, with Python and the <code>cryptography</code> library only (the signature covers the
certificate object's canonical JSON: sorted keys, no spaces, UTF-8):</p>
<pre id="verify-python">{escape(snippet)}</pre>
<h3>The certificate</h3>
<pre id="certificate-json">{escape(text)}</pre>
<h3>The public key (Ed25519)</h3>
<pre id="public-key">{escape(key_json)}</pre>
"""


def render(
    *,
    certificate_document: dict[str, object],
    key: dict[str, str],
    figures: ReportFigures,
    period: Period,
    plugin: str | None,
    generated_at: datetime.datetime,
) -> str:
    """The report's HTML."""
    certificate = certificate_document["certificate"]
    assert isinstance(certificate, dict)  # noqa: S101 - made by issue_certificate
    app, title = str(certificate["app"]), str(certificate["app_title"])
    issuer = str(certificate["issuer"]["name"])
    subject = f"{title}: the plugin {plugin}" if plugin else title
    k = figures.methods.threshold
    css = resources.files("consentry_server.public.funder_report").joinpath("report.css").read_text("utf-8")
    distributions = "".join(_distribution(d, plugin, k) for d in figures.distributions)
    breakdown = "Plugin versions" if plugin else "Versions and operating systems"
    no_cross = (
        '<p class="note">The published data has no cross-tabulation of a plugin with operating systems, so none is '
        "shown.</p>" if plugin else ""
    )  # fmt: skip
    generated = generated_at.astimezone(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="consentry-server {escape(__version__)}">
<title>{escape(subject)}: usage report {escape(period.label)}</title>
<style>
{css}</style>
</head>
<body>
<main>
<header>
<h1>{escape(subject)}: usage in {escape(period.label)}</h1>
<p class="subtitle">{period.start.isoformat()} to {period.end.isoformat()} · counted by {escape(issuer)} ·
published {escape(str(certificate["published_at"]))} · certificate signed {escape(str(certificate["issued_at"]))}</p>
</header>
<section id="summary" aria-labelledby="summary-heading">
<h2 id="summary-heading">Summary</h2>
<p>{escape(str(certificate["figures"]["counted"]).capitalize())}, who agreed to share anonymous usage statistics.
Only published figures are shown: a figure marked <em>hidden</em> rests on fewer than {k} installs and was not
published.</p>
{_headline(certificate, plugin)}
</section>
<section id="weekly" aria-labelledby="weekly-heading">
<h2 id="weekly-heading">Weekly active installs</h2>
{_weekly(figures, plugin, k)}
</section>
<section id="breakdown" aria-labelledby="breakdown-heading">
<h2 id="breakdown-heading">{breakdown}</h2>
{no_cross}{distributions}
</section>
<section id="features" aria-labelledby="features-heading">
<h2 id="features-heading">Top features</h2>
{_features(figures, k)}
</section>
<section id="methods" class="print-break" aria-labelledby="methods-heading">
<h2 id="methods-heading">Methods</h2>
{_counting(app, plugin, figures)}
<h3>Privacy protections</h3>
{_privacy(figures.methods, str(certificate["published_at"]))}
<h3>Levels and what each collects</h3>
{_levels(figures.methods)}
</section>
<section id="certificate" class="print-break" aria-labelledby="certificate-heading">
<h2 id="certificate-heading">Signed usage certificate</h2>
{_certificate(certificate_document, key, app, plugin, period.label)}
</section>
<footer>Made by <code>consentry-server report</code> ({escape(__version__)}) at {generated}. This file is
self-contained: it loads no script, font or image.</footer>
</main>
</body>
</html>
"""

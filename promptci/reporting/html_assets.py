"""The HTML report's stylesheet and its one script, kept apart from the writer so each reads as what it is.

The script renders every piece of data with textContent (never innerHTML) and adds listeners with
addEventListener: the page's Content-Security-Policy allows no inline handler.
"""

from promptci.reporting.page import JS_HASH_FILTERS, JS_PRELUDE

PAGE_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1b1f24;background:#fff}
code,pre{font:12px/1.35 ui-monospace,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;word-break:break-word;margin:0;padding:.4em;background:#f6f8fa;border-radius:4px;
max-height:30em;overflow:auto}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f6f8fa}
#cases>tbody>tr.row{cursor:pointer}#cases>tbody>tr.row:hover{background:#f6f8fa}
.passed{color:#1a7f37}.failed{color:#cf222e;font-weight:600}.error{color:#9a6700;font-weight:600}
.skipped{color:#6e7781}.dim{opacity:.45}
.panels{display:grid;grid-template-columns:1fr 1fr 1fr;gap:.5em}.panel h4{margin:.2em 0}
.add{background:#dafbe1}.del{background:#ffebe9}.why{color:#cf222e}
form label{margin-right:1em}#counts{font-weight:600}
.note{color:#9a6700;font-weight:600}.flaky{color:#9a6700}
.more-button{width:100%}.reviewed{font-weight:600}.reviewed.good{color:#1a7f37}
.reviewed.bad{color:#cf222e}.disagreement{margin:.4em 0}.disagreement>summary{cursor:pointer}
"""

PAGE_JS = JS_PRELUDE + r"""
  const s = data.summary, run = data.run;

  $("run-id").textContent = run.id;
  $("run-meta").textContent = [run.commit ? "commit " + run.commit.slice(0, 12) + (run.dirty ? " (dirty)" : "") : "",
    run.started, run.models.join(", "), run.seconds !== null ? num(run.seconds, 1) + " s" : "",
    run.interrupted ? "INTERRUPTED: only finished cases are shown" : ""].filter(Boolean).join(" · ");
  $("counts").textContent = s.total + " results: " + s.passed + " passed, " + s.failed + " failed, " + s.errors +
    " errors, " + s.skipped + " skipped · " + s.cost_text + " · tokens " + s.input_tokens + " in / " +
    s.output_tokens + " out · " + s.cached + " cached";
  $("notes").appendChild(el("li", run.verdict, "note"));
  for (const n of run.notes) $("notes").appendChild(el("li", n, "note"));
  for (const p of run.problems) $("problems").appendChild(el("li", p));

  const groupBody = $("groups").tBodies[0];
  for (const g of data.groups) {
    const tr = groupBody.insertRow();
    for (const v of [g.prompt, g.model, g.passed, g.failed, g.errors,
        g.pass_rate === null ? "–" : (100 * g.pass_rate).toFixed(1) + "%", g.cost_text,
        g.input_tokens + " / " + g.output_tokens, num(g.latency_p50_ms, 0) + " / " + num(g.latency_p95_ms, 0),
        num(g.ttft_p50_ms, 0)]) tr.appendChild(el("td", v));
  }
  const pct = (v) => (v === null || v === undefined) ? "–" : (100 * v).toFixed(0) + "%";
  function addRow(body, values, cls) {
    const tr = body.insertRow();
    values.forEach((v, i) => tr.appendChild(el(i ? "td" : "th", v)));
    if (cls) tr.className = cls;
    return tr;
  }

  if (data.metrics.length) {
    $("metrics-section").hidden = false;
    const body = $("metrics").tBodies[0];
    for (const m of data.metrics) addRow(body, [m[0], m[1], m[2], num(m[3], 3), pct(m[4]), m[5]]);
  }

  for (const side of data.sides) {
    $("sides-section").hidden = false;
    const box = $("sides");
    box.appendChild(el("h3", side.file + " (" + side.cases + " cases)"));
    const table = el("table", null, "sides");
    const head = table.createTHead().insertRow();
    for (const title of ["model", "measure", ...side.prompts]) head.appendChild(el("th", title));
    const body = table.createTBody();
    for (const [model, measures] of side.models) {
      measures.forEach(([measure, cells], i) => addRow(body, [i ? "" : model, measure, ...cells]));
    }
    box.appendChild(table);
  }

  if (data.matrix) {
    $("matrix-section").hidden = false;
    const head = $("matrix-head"), body = $("matrix").tBodies[0];
    for (const m of run.models) head.appendChild(el("th", m));
    for (const r of data.matrix.rows) {
      data.matrix.metrics.forEach((metric, i) => addRow(body, [i ? "" : r.prompt, metric,
        ...run.models.map((m) => r.cells[m] ? r.cells[m][i] : "-")]));
    }
    const disagree = data.matrix.disagree;
    $("disagree-title").textContent = disagree.length + " case(s) where the models disagree";
    for (const d of disagree) {
      const box = el("details", null, "disagreement");
      box.appendChild(el("summary", d.p + " / " + d.c + " — " + d.f + ":" + d.l + " — " +
        d.by.map(([m, st]) => m + " " + st).join(", ")));
      const panels = el("div", null, "panels");
      for (const [m, st, index] of d.by) panels.appendChild(textBlock(m + ": " + st, data.cases[index].o, false));
      box.appendChild(panels);
      box.open = disagree.length <= 20;
      $("disagree").appendChild(box);
    }
  }

  if (data.rates.length) {
    $("rates-section").hidden = false;
    const rateText = (r) => "passed " + r[5] + " of " + r[6] + " (" + pct(r[6] ? r[5] / r[6] : null) + ", 95% CI " +
      pct(r[7]) + "-" + pct(r[8]) + ")";
    const flaky = data.rates.filter((r) => r[9]);
    $("rates-summary").textContent = data.rates.length + " repeated case(s), " + flaky.length +
      " flaky (samples disagreed)";
    for (const r of flaky) {
      $("flaky").appendChild(el("li", r[3] + ":" + r[4] + " " + r[0] + " / " + r[1] + " [" + r[2] + "]: flaky, " +
        rateText(r), "flaky"));
    }
    for (const line of data.reliability) $("reliability").appendChild(el("li", line));
    // Every case's rate is built when first opened: a large repeated run would otherwise slow the first render.
    const details = $("rates-details");
    const fillRates = () => {
      const body = $("rates").tBodies[0];
      if (body.rows.length) return;
      data.rates.forEach((r, i) => addRow(body, [r[0] + " / " + r[1], r[2], r[3] + ":" + r[4], r[5] + " / " + r[6],
        rateText(r), r[9] ? "flaky" : "", data.rates_k[i]], r[9] ? "flaky" : ""));
    };
    details.addEventListener("toggle", fillRates);
    if (data.rates.length <= 500 || new URLSearchParams(location.hash.slice(1)).get("rates") === "1") {
      details.open = true;
      fillRates();
    }
  }

  const models = run.models.length ? run.models : [...new Set(data.cases.map((c) => c.m))];
  const unique = (key) => [...new Set(data.cases.flatMap((c) => key(c)))].sort();
  function fill(select, values) { for (const v of values) select.appendChild(el("option", v)); }
  fill($("f-prompt"), unique((c) => [c.p]));
  fill($("f-model"), models);
  fill($("f-tag"), unique((c) => c.t));
  const inputs = {prompt: $("f-prompt"), model: $("f-model"), status: $("f-status"), tag: $("f-tag"), q: $("f-q")};

  const rows = new Map();
  for (const c of data.cases) {
    const key = c.p + "\u0000" + c.c + "\u0000" + c.r;
    if (!rows.has(key)) rows.set(key, {first: c, byModel: new Map()});
    rows.get(key).byModel.set(c.m, c);
  }
  const haystack = (c) => [c.p, c.c, c.f, c.o, c.e, c.x, ...c.why, ...c.t, c.rv ? c.rv[1] : ""].join("\n")
    .toLowerCase();
  const hay = new Map(data.cases.map((c) => [c, null]));

  function filters() {
    const f = {};
    for (const [name, input] of Object.entries(inputs)) f[name] = input.value;
    f.q = f.q.toLowerCase();
    return f;
  }
  function matches(c, f) {
    if (f.prompt && c.p !== f.prompt) return false;
    if (f.model && c.m !== f.model) return false;
    if (f.status && c.s !== f.status) return false;
    if (f.tag && !c.t.includes(f.tag)) return false;
    if (f.q) {
      if (hay.get(c) === null) hay.set(c, haystack(c));
      if (!hay.get(c).includes(f.q)) return false;
    }
    return true;
  }

  function textBlock(title, text, isDiff) {
    const panel = el("div", null, "panel");
    panel.appendChild(el("h4", title));
    const pre = el("pre");
    if (text === null || text === undefined) pre.textContent = "(none)";
    else if (!isDiff) pre.textContent = text;
    else for (const line of text.split("\n")) {
      pre.appendChild(el("span", line + "\n", line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : ""));
    }
    panel.appendChild(pre);
    return panel;
  }
  function detail(row, shownModels, colspan) {
    const tr = el("tr", null, "detail");
    const td = el("td");
    td.colSpan = colspan;
    for (const m of shownModels) {
      const c = row.byModel.get(m);
      if (!c) continue;
      td.appendChild(el("h3", m + ": " + c.s, c.s));
      if (c.rv) td.appendChild(el("div", c.rv[1], "reviewed " + c.rv[0]));
      for (const why of c.why) td.appendChild(el("div", why, "why"));
      if (c.e) td.appendChild(el("div", c.e, "why"));
      td.appendChild(el("div", "tokens " + (c.tin ?? "–") + " in / " + (c.tout ?? "–") + " out · $" +
        num(c.usd, 6) + " · " + num(c.ms, 0) + " ms" + (c.k ? " · cached" : "")));
      const panels = el("div", null, "panels");
      panels.appendChild(textBlock("expected", c.x, false));
      panels.appendChild(textBlock("actual", c.o, false));
      panels.appendChild(textBlock("diff", c.d, true));
      if (c.conv) panels.appendChild(textBlock("conversation (→ call, ← mock)", c.conv, false));
      td.appendChild(panels);
      if (window.promptciDetail) window.promptciDetail(td, c);  // the viewer's review controls
    }
    tr.appendChild(td);
    return tr;
  }

  // The case table is built in chunks: the first screenful at once, the next as the reader scrolls near the
  // end (or asks): a 10,000-case page renders as fast as a small one. Filters and search read the data, not
  // the table, so they find a case however far down it is.
  const FIRST_ROWS = 100, MORE_ROWS = 500;
  let pending = null;  // the current render's rows not yet in the table
  const more = el("tr", null, "more");
  const moreCell = el("td");
  const moreButton = el("button", null, "more-button");
  moreButton.type = "button";
  moreCell.append(moreButton);
  more.append(moreCell);
  moreButton.addEventListener("click", () => appendRows(MORE_ROWS));
  const watcher = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) appendRows(MORE_ROWS);
  }, {rootMargin: "800px"}) : null;

  function caseRow(row, hits, shownModels) {
    const tr = el("tr", null, "row");
    const first = row.first;
    tr.appendChild(el("td", first.p + " / " + first.c + (first.r ? " (repeat " + first.r + ")" : "") +
      " — " + first.f + ":" + first.l));
    for (const m of shownModels) {
      const c = row.byModel.get(m);
      const td = el("td", c ? c.s + (c.ms !== null ? " · " + num(c.ms, 0) + " ms" : "") +
        (c.rv ? " · reviewed " + c.rv[0] : "") : "", c ? c.s : "");
      if (c && !hits.includes(c)) td.classList.add("dim");
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => {
      const next = tr.nextSibling;
      if (next && next.classList.contains("detail")) next.remove();
      else tr.after(detail(row, shownModels, shownModels.length + 1));
    });
    return tr;
  }

  function appendRows(count) {
    if (!pending) return;
    const {matched, shownModels, expand} = pending;
    const body = document.createDocumentFragment();
    const end = Math.min(pending.next + count, matched.length);
    for (; pending.next < end; pending.next += 1) {
      const [row, hits] = matched[pending.next];
      body.appendChild(caseRow(row, hits, shownModels));
      if (expand) body.appendChild(detail(row, shownModels, shownModels.length + 1));
    }
    const tbody = $("cases").tBodies[0];
    if (more.parentNode) more.remove();
    tbody.appendChild(body);
    const left = matched.length - pending.next;
    if (left > 0) {
      moreCell.colSpan = shownModels.length + 1;
      moreButton.textContent = "show " + Math.min(left, MORE_ROWS) + " more of " + left + " rows not built yet " +
        "(they load as you scroll; the filters and search look through every row)";
      tbody.appendChild(more);
      if (watcher) { watcher.unobserve(more); watcher.observe(more); }  // a new observation reports at once
    } else {
      pending = null;
    }
    $("cases").dataset.built = String(end);
  }

  function render(expand) {
    const f = filters();
    const shownModels = f.model ? [f.model] : models;
    const head = $("cases-head");
    while (head.children.length > 1) head.removeChild(head.lastChild);
    for (const m of shownModels) head.appendChild(el("th", m));
    const matched = [];
    let shownResults = 0;
    for (const row of rows.values()) {
      const hits = [...row.byModel.values()].filter((c) => matches(c, f));
      if (!hits.length) continue;
      shownResults += hits.length;
      matched.push([row, hits]);
    }
    $("cases").tBodies[0].replaceChildren();
    pending = {matched, shownModels, expand, next: 0};
    appendRows(FIRST_ROWS);
    const shown = $("shown");
    shown.textContent = "showing " + shownResults + " of " + data.cases.length + " results (" + matched.length +
      " rows)";
    shown.dataset.shown = String(shownResults);
  }

""" + JS_HASH_FILTERS + r"""
  // Time from navigation to the first full render, style and layout included (reading offsetHeight forces
  // them now), for bench/bench_html.py.
  void document.body.offsetHeight;
  document.documentElement.dataset.renderedMs = performance.now().toFixed(0);
})();
"""

"""The HTML report's stylesheet and its one script, kept apart from the writer so each reads as what it is.

The script renders every piece of data with textContent (never innerHTML) and adds listeners with
addEventListener: the page's Content-Security-Policy allows no inline handler.
"""

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
"""

PAGE_JS = r"""
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("promptci-data").textContent);
  const $ = (id) => document.getElementById(id);
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  const num = (v, digits) => (v === null || v === undefined) ? "–" : Number(v).toFixed(digits);
  const s = data.summary, run = data.run;

  $("run-id").textContent = run.id;
  $("run-meta").textContent = [run.commit ? "commit " + run.commit.slice(0, 12) + (run.dirty ? " (dirty)" : "") : "",
    run.started, run.models.join(", "), run.seconds !== null ? num(run.seconds, 1) + " s" : "",
    run.interrupted ? "INTERRUPTED: only finished cases are shown" : ""].filter(Boolean).join(" · ");
  $("counts").textContent = s.total + " results: " + s.passed + " passed, " + s.failed + " failed, " + s.errors +
    " errors, " + s.skipped + " skipped · $" + num(s.cost_usd, 4) + " · tokens " + s.input_tokens + " in / " +
    s.output_tokens + " out · " + s.cached + " cached";
  for (const p of run.problems) $("problems").appendChild(el("li", p));

  const groupBody = $("groups").tBodies[0];
  for (const g of data.groups) {
    const tr = groupBody.insertRow();
    for (const v of [g.prompt, g.model, g.passed, g.failed, g.errors,
        g.pass_rate === null ? "–" : (100 * g.pass_rate).toFixed(1) + "%", num(g.cost_usd, 6),
        g.input_tokens + " / " + g.output_tokens, num(g.latency_p50_ms, 0) + " / " + num(g.latency_p95_ms, 0),
        num(g.ttft_p50_ms, 0)]) tr.appendChild(el("td", v));
  }
  if (data.flaky.length) {
    $("flaky-section").hidden = false;
    for (const f of data.flaky) $("flaky").appendChild(el("li", f[0] + " " + f[1] + " [" + f[2] + "]: passed " +
      f[3] + " of " + f[4]));
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
  const haystack = (c) => [c.p, c.c, c.f, c.o, c.e, c.x, ...c.why, ...c.t].join("\n").toLowerCase();
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
      for (const why of c.why) td.appendChild(el("div", why, "why"));
      if (c.e) td.appendChild(el("div", c.e, "why"));
      td.appendChild(el("div", "tokens " + (c.tin ?? "–") + " in / " + (c.tout ?? "–") + " out · $" +
        num(c.usd, 6) + " · " + num(c.ms, 0) + " ms" + (c.k ? " · cached" : "")));
      const panels = el("div", null, "panels");
      panels.appendChild(textBlock("expected", c.x, false));
      panels.appendChild(textBlock("actual", c.o, false));
      panels.appendChild(textBlock("diff", c.d, true));
      td.appendChild(panels);
    }
    tr.appendChild(td);
    return tr;
  }

  function render(expand) {
    const f = filters();
    const shownModels = f.model ? [f.model] : models;
    const head = $("cases-head");
    while (head.children.length > 1) head.removeChild(head.lastChild);
    for (const m of shownModels) head.appendChild(el("th", m));
    const body = document.createDocumentFragment();
    let shownResults = 0, shownRows = 0;
    for (const row of rows.values()) {
      const hits = [...row.byModel.values()].filter((c) => matches(c, f));
      if (!hits.length) continue;
      shownRows += 1;
      shownResults += hits.length;
      const tr = el("tr", null, "row");
      const first = row.first;
      tr.appendChild(el("td", first.p + " / " + first.c + (first.r ? " (repeat " + first.r + ")" : "") +
        " — " + first.f + ":" + first.l));
      for (const m of shownModels) {
        const c = row.byModel.get(m);
        const td = el("td", c ? c.s + (c.ms !== null ? " · " + num(c.ms, 0) + " ms" : "") : "", c ? c.s : "");
        if (c && !hits.includes(c)) td.classList.add("dim");
        tr.appendChild(td);
      }
      tr.addEventListener("click", () => {
        const next = tr.nextSibling;
        if (next && next.classList.contains("detail")) next.remove();
        else tr.after(detail(row, shownModels, shownModels.length + 1));
      });
      body.appendChild(tr);
      if (expand) body.appendChild(detail(row, shownModels, shownModels.length + 1));
    }
    const tbody = $("cases").tBodies[0];
    tbody.replaceChildren(body);
    const shown = $("shown");
    shown.textContent = "showing " + shownResults + " of " + data.cases.length + " results (" + shownRows + " rows)";
    shown.dataset.shown = String(shownResults);
  }

  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const [name, input] of Object.entries(inputs)) input.value = params.get(name) || "";
    return params.get("expand") === "1";
  }
  function toHash() {
    const params = new URLSearchParams();
    for (const [name, input] of Object.entries(inputs)) if (input.value) params.set(name, input.value);
    try { history.replaceState(null, "", "#" + params.toString()); } catch (e) { /* file:// in some browsers */ }
  }
  for (const input of Object.values(inputs)) {
    input.addEventListener(input.tagName === "INPUT" ? "input" : "change", () => { toHash(); render(false); });
  }
  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("expand-all").addEventListener("click", () => render(true));
  window.addEventListener("hashchange", () => render(fromHash()));
  render(fromHash());
  // Time from navigation to the first full render, style and layout included (reading offsetHeight forces
  // them now), for bench/bench_html.py.
  void document.body.offsetHeight;
  document.documentElement.dataset.renderedMs = performance.now().toFixed(0);
})();
"""

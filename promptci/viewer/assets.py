"""The viewer's stylesheet and scripts: the navigation and review controls every page shares (VIEWER_JS, run
before the page's own script), and the runs, case and cost pages. Data is rendered with textContent only."""

from promptci.reporting.page import JS_PRELUDE

VIEWER_CSS = """
#viewer-nav{display:flex;gap:1.2em;padding:.4em 0 .6em;border-bottom:1px solid #d0d7de;margin-bottom:.8em}
.review{margin:.4em 0 .8em;display:flex;gap:.6em;flex-wrap:wrap;align-items:center}
.review-state{font-weight:600}.review-state.good{color:#1a7f37}.review-state.bad{color:#cf222e}
.review-msg{flex-basis:100%}.changed{color:#9a6700;font-weight:600}
svg.chart{border:1px solid #d0d7de;background:#fff;margin:.5em 0}
#runs td.num{text-align:right}
"""

VIEWER_JS = r"""
"use strict";
(function () {
  const viewer = JSON.parse(document.getElementById("viewer-data").textContent);
  const links = viewer.links;
  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function link(kind, params) {
    params = params || {};
    if (links.files) {
      if (kind === "run") return links.files[params.id] || null;
      if (kind === "compare") return links.files[params.a + " " + params.b] || null;
      if (kind === "case") return "case.html#" + new URLSearchParams({p: params.p, c: params.c}).toString();
      return links.routes[kind] || null;
    }
    let url = links.routes[kind];
    for (const [name, value] of Object.entries(params)) url = url.replace("{" + name + "}", encodeURIComponent(value));
    return url;
  }
  function anchor(text, url, cls) {
    const a = el(url ? "a" : "span", text, cls);
    if (url) a.href = url;
    return a;
  }
  async function post(path, body) {
    const answer = await fetch(path, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const reply = await answer.json().catch(() => ({error: "HTTP " + answer.status}));
    if (!answer.ok) throw new Error(reply.error || "HTTP " + answer.status);
    return reply;
  }
  const reviewText = (r) => r.verdict + " (" + r.by + ", " + r.at + ")" + (r.note ? ": " + r.note : "");
  function reviewOf(prompt, caseId, hash) {
    return ((viewer.reviews && viewer.reviews[prompt] || {})[caseId] || {})[hash];
  }
  window.promptciViewer = {viewer, link, anchor, el, post, reviewText, reviewOf};

  const nav = document.getElementById("viewer-nav");
  nav.appendChild(anchor("runs", link("runs")));
  nav.appendChild(anchor("cost", link("cost")));
  if (links.routes.revisions) nav.appendChild(anchor("compare revisions", link("revisions")));
  if (!links.write) nav.appendChild(el("span", "static bundle: read-only"));

  window.promptciCompareDetail = function (td, c) {
    td.appendChild(anchor("history of " + c.c, link("case", {p: c.p, c: c.c}), "history-link"));
  };
  if (viewer.page !== "run") return;
  window.promptciDetail = function (td, c) {
    const box = el("div", null, "review");
    const key = [c.p, c.c, c.m, c.r].join("\u0000");
    const hash = viewer.hashes[key];
    box.appendChild(anchor("history of " + c.c, link("case", {p: c.p, c: c.c}), "history-link"));
    const existing = reviewOf(c.p, c.c, hash);
    const state = el("span", existing ? "reviewed " + reviewText(existing) : "not reviewed",
      "review-state " + (existing ? existing.verdict : ""));
    box.appendChild(state);
    if (links.write) {
      const note = el("input", null, "review-note");
      note.placeholder = "note";
      const message = el("pre", null, "review-msg");
      message.hidden = true;
      const show = (text) => { message.hidden = false; message.textContent = text; };
      const target = {run: viewer.run, prompt: c.p, case: c.c, model: c.m, repeat: c.r, hash: hash};
      for (const verdict of ["good", "bad"]) {
        const button = el("button", "mark " + verdict, "review-" + verdict);
        button.type = "button";
        button.addEventListener("click", async () => {
          try {
            const reply = await post("/api/review", {...target, verdict: verdict, note: note.value});
            viewer.reviews[c.p] = viewer.reviews[c.p] || {};
            viewer.reviews[c.p][c.c] = viewer.reviews[c.p][c.c] || {};
            viewer.reviews[c.p][c.c][hash] = reply.review;
            state.textContent = "reviewed " + reviewText(reply.review);
            state.className = "review-state " + verdict;
            show("written to " + reply.file);
          } catch (error) { show("not saved: " + error.message); }
        });
        box.appendChild(button);
      }
      box.appendChild(note);
      if (c.s === "failed") {
        const accept = el("button", "accept as golden", "review-accept");
        accept.type = "button";
        accept.addEventListener("click", async () => {
          try {
            const reply = await post("/api/accept", target);
            show("golden changed:\n" + reply.diff);
          } catch (error) { show("not accepted: " + error.message); }
        });
        box.appendChild(accept);
      }
      box.appendChild(message);
    }
    td.appendChild(box);
  };
})();
"""

_PAGE_HELPERS = JS_PRELUDE + r"""
  const {link, anchor, reviewText, reviewOf} = window.promptciViewer;
  const hashParams = () => new URLSearchParams(location.hash.slice(1));
  function setHash(values) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(values)) if (value) params.set(name, value);
    const hash = params.toString();
    try { history.replaceState(null, "", location.pathname + location.search + (hash ? "#" + hash : "")); }
    catch (e) { /* file:// in some browsers */ }
  }
  const pct = (passed, total) => total ? (100 * passed / total).toFixed(1) + "%" : "–";
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }
"""

RUNS_BODY = """<h1>promptci runs</h1>
<form id="run-filters">
<label>search <input id="f-q" type="search" placeholder="id, command, commit, branch, model"></label>
<label>branch <select id="f-branch"><option value="">all</option></select></label>
<button type="button" id="compare-picked">compare A → B</button> <span id="compare-msg"></span>
</form>
<p id="shown"></p>
<table id="runs"><thead><tr><th>A</th><th>B</th><th>run</th><th>started</th><th>command</th><th>commit</th>
<th>branch</th><th>models</th><th>pass rate</th><th>cost (USD)</th><th>duration (s)</th><th></th></tr></thead>
<tbody></tbody></table>
"""

RUNS_JS = _PAGE_HELPERS + r"""
  const body = $("runs").tBodies[0];
  const rows = [];
  data.runs.forEach((r, i) => {
    const [id, started, command, commit, dirty, branch, models, passed, total, cost, seconds, interrupted] = r;
    const tr = body.insertRow();
    tr.dataset.run = id;
    for (const side of ["a", "b"]) {
      const td = el("td"), radio = el("input");
      radio.type = "radio"; radio.name = "pick-" + side; radio.value = id; radio.className = "pick-" + side;
      td.appendChild(radio); tr.appendChild(td);
    }
    const idCell = el("td"); idCell.appendChild(anchor(id, link("run", {id: id}), "run-link")); tr.appendChild(idCell);
    tr.appendChild(el("td", started));
    tr.appendChild(el("td", command || ""));
    tr.appendChild(el("td", commit ? commit.slice(0, 12) + (dirty ? " (dirty)" : "") : "–"));
    tr.appendChild(el("td", branch || ""));
    tr.appendChild(el("td", models.join(", ")));
    tr.appendChild(el("td", passed + "/" + total + " (" + pct(passed, total) + ")", "num"));
    tr.appendChild(el("td", num(cost, 4), "num"));
    tr.appendChild(el("td", num(seconds, 1) + (interrupted ? " interrupted" : ""), "num"));
    const older = data.runs[i + 1];
    const prev = el("td");
    if (older) prev.appendChild(anchor("vs previous", link("compare", {a: older[0], b: id}), "vs-previous"));
    tr.appendChild(prev);
    rows.push([tr, [id, command, commit, branch, ...models].join("\n").toLowerCase(), branch || ""]);
  });
  const branches = [...new Set(data.runs.map((r) => r[5]).filter(Boolean))].sort();
  for (const b of branches) $("f-branch").appendChild(el("option", b));
  function render() {
    const q = $("f-q").value.toLowerCase(), branch = $("f-branch").value;
    let shown = 0;
    for (const [tr, hay, b] of rows) {
      tr.hidden = (q && !hay.includes(q)) || (branch && b !== branch);
      if (!tr.hidden) shown += 1;
    }
    $("shown").textContent = "showing " + shown + " of " + data.runs.length + " runs";
    setHash({q: $("f-q").value, branch: branch});
  }
  const start = hashParams();
  $("f-q").value = start.get("q") || "";
  $("f-branch").value = start.get("branch") || "";
  $("f-q").addEventListener("input", render);
  $("f-branch").addEventListener("change", render);
  $("run-filters").addEventListener("submit", (event) => event.preventDefault());
  $("compare-picked").addEventListener("click", () => {
    const a = document.querySelector("input.pick-a:checked"), b = document.querySelector("input.pick-b:checked");
    if (!a || !b) { $("compare-msg").textContent = "pick a run A and a run B"; return; }
    const url = link("compare", {a: a.value, b: b.value});
    if (url) location.href = url; else $("compare-msg").textContent = "this bundle does not hold that pair";
  });
  render();
  void document.body.offsetHeight;
  document.documentElement.dataset.renderedMs = performance.now().toFixed(0);
})();
"""

CASE_BODY = """<h1>case <code id="case-name"></code></h1>
<ul id="case-list" hidden></ul>
<form id="case-filters"><label>model <select id="f-model"><option value="">all</option></select></label></form>
<p id="case-summary"></p>
<div id="chart"></div>
<table id="commits"><thead><tr><th>commit</th><th>branch</th><th>runs</th><th>pass rate</th><th>outputs</th>
</tr></thead><tbody></tbody></table>
<h2>Outputs by commit</h2><div id="outputs"></div>
"""

CASE_JS = _PAGE_HELPERS + r"""
  const params = hashParams();
  const key = data.selected || ((params.get("p") || "") + "\u0000" + (params.get("c") || ""));
  const samples = data.cases[key];
  if (!samples) {
    $("case-name").textContent = "(choose one)";
    $("case-list").hidden = false;
    for (const k of Object.keys(data.cases).sort()) {
      const [p, c] = k.split("\u0000");
      const li = el("li");
      li.appendChild(anchor(p + " / " + c, link("case", {p: p, c: c})));
      $("case-list").appendChild(li);
    }
    window.addEventListener("hashchange", () => location.reload());
    return;
  }
  const [prompt, caseId] = key.split("\u0000");
  $("case-name").textContent = prompt + " / " + caseId;
  for (const m of [...new Set(samples.map((s) => s[5]))].sort()) $("f-model").appendChild(el("option", m));
  $("f-model").value = params.get("m") || "";
  function groups(model) {
    const found = new Map();
    for (const s of samples) {
      const [run, started, commit, dirty, branch, m, repeat, status, output, hash] = s;
      if (model && m !== model) continue;
      const name = commit ? commit.slice(0, 12) + (dirty ? "+dirty" : "") : "(no commit)";
      if (!found.has(name)) found.set(name, {name, branch, runs: [], passed: 0, scored: 0, outputs: new Map()});
      const g = found.get(name);
      if (!g.runs.includes(run)) g.runs.push(run);
      if (status !== "skipped") { g.scored += 1; if (status === "passed") g.passed += 1; }
      if (!g.outputs.has(hash)) g.outputs.set(hash, {output, hash, models: new Set(), statuses: new Set()});
      g.outputs.get(hash).models.add(m);
      g.outputs.get(hash).statuses.add(status);
    }
    return [...found.values()];
  }
  function chart(list) {
    const width = Math.max(240, 60 * list.length), height = 120, pad = 20;
    const box = svg("svg", {width: width, height: height + 2 * pad, class: "chart", role: "img",
      "aria-label": "pass rate per commit"});
    box.appendChild(svg("line", {x1: pad, y1: pad, x2: width - pad, y2: pad, stroke: "#d0d7de"}));
    box.appendChild(svg("line", {x1: pad, y1: pad + height, x2: width - pad, y2: pad + height, stroke: "#d0d7de"}));
    const step = list.length > 1 ? (width - 2 * pad) / (list.length - 1) : 0;
    const points = list.map((g, i) => [pad + i * step, pad + height * (1 - (g.scored ? g.passed / g.scored : 0))]);
    box.appendChild(svg("polyline", {points: points.map((p) => p.join(",")).join(" "), fill: "none",
      stroke: "#0969da", "stroke-width": 2}));
    list.forEach((g, i) => {
      const dot = svg("circle", {cx: points[i][0], cy: points[i][1], r: 4,
        fill: g.passed === g.scored ? "#1a7f37" : "#cf222e"});
      dot.appendChild(svg("title", {}, g.name + ": " + pct(g.passed, g.scored)));
      box.appendChild(dot);
      box.appendChild(svg("text", {x: points[i][0], y: height + 2 * pad - 4, "font-size": 10, "text-anchor": "middle"},
        g.name.slice(0, 7)));
    });
    return box;
  }
  function render() {
    const model = $("f-model").value;
    setHash(data.selected ? {m: model} : {p: prompt, c: caseId, m: model});
    const list = groups(model);
    $("case-summary").textContent = samples.length + " stored results in " + list.length + " commit(s)";
    $("chart").replaceChildren(chart(list));
    const body = $("commits").tBodies[0], outputs = $("outputs");
    body.replaceChildren(); outputs.replaceChildren();
    let previous = null;
    for (const g of list) {
      const hashes = [...g.outputs.keys()].sort().join(" ");
      const changed = previous !== null && hashes !== previous;
      previous = hashes;
      const tr = body.insertRow();
      tr.appendChild(el("td", g.name + (changed ? " (output changed)" : ""), changed ? "changed" : ""));
      tr.appendChild(el("td", g.branch || ""));
      const runs = el("td");
      for (const r of g.runs) {
        runs.appendChild(anchor(r, link("run", {id: r}), "run-link"));
        runs.appendChild(el("span", " "));
      }
      tr.appendChild(runs);
      tr.appendChild(el("td", g.passed + "/" + g.scored + " (" + pct(g.passed, g.scored) + ")"));
      tr.appendChild(el("td", String(g.outputs.size)));
      const section = el("section", null, "commit-outputs");
      section.appendChild(el("h3", g.name + (changed ? ": output changed" : ""), changed ? "changed" : ""));
      for (const o of g.outputs.values()) {
        const review = reviewOf(prompt, caseId, o.hash);
        section.appendChild(el("div", [...o.models].join(", ") + " · " + [...o.statuses].join(", ") +
          (review ? " · reviewed " + reviewText(review) : "")));
        section.appendChild(el("pre", o.output === null ? "(no output)" : o.output));
      }
      outputs.appendChild(section);
    }
  }
  $("f-model").addEventListener("change", render);
  render();
})();
"""

COST_BODY = """<h1>promptci cost</h1>
<form id="cost-filters"><label>since <input id="f-since" name="since" placeholder="7d, 30d, 2026-11-01"></label>
<button type="submit" id="since-go">show</button></form>
<p id="cost-total"></p>
<h2>Per day</h2><div id="day-chart"></div>
<table id="by-day" class="cost"></table>
<h2>Per prompt</h2><table id="by-prompt" class="cost"></table>
<h2>Per model</h2><table id="by-model" class="cost"></table>
<h2>Per branch</h2><table id="by-branch" class="cost"></table>
"""

COST_JS = _PAGE_HELPERS + r"""
  const [requests, spent, unknown] = data.total;
  $("cost-total").textContent = requests + " requests since " + data.since + ": $" + num(spent, 4) +
    (unknown ? " + " + unknown + " request(s) of unknown price" : "");
  $("f-since").value = data.since;
  if (!window.promptciViewer.viewer.links.write) $("cost-filters").hidden = true;
  $("cost-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    location.href = link("cost") + "?since=" + encodeURIComponent($("f-since").value);
  });
  function table(id, title, rows) {
    const t = $(id), head = t.createTHead().insertRow();
    const titles = [title, "requests", "cost (USD)", "unknown price", "saved (USD)", "tokens in", "tokens out"];
    for (const h of titles) head.appendChild(el("th", h));
    const body = t.createTBody();
    for (const r of rows) {
      const tr = body.insertRow();
      [r[0], r[1], num(r[2], 6), r[3], num(r[4], 6), r[5], r[6]].forEach((v) => tr.appendChild(el("td", v)));
    }
  }
  table("by-day", "day", data.day);
  table("by-prompt", "prompt", data.prompt);
  table("by-model", "model", data.model);
  table("by-branch", "branch", data.branch);
  const top = Math.max(1e-9, ...data.day.map((r) => r[2])), bar = 28, height = 120, pad = 20;
  const chart = svg("svg", {width: Math.max(200, data.day.length * (bar + 8) + 2 * pad), height: height + 2 * pad,
    class: "chart", role: "img", "aria-label": "cost per day"});
  data.day.forEach((r, i) => {
    const h = height * r[2] / top, x = pad + i * (bar + 8);
    const rect = svg("rect", {x: x, y: pad + height - h, width: bar, height: h, fill: "#0969da"});
    rect.appendChild(svg("title", {}, r[0] + ": $" + num(r[2], 4)));
    chart.appendChild(rect);
    chart.appendChild(svg("text", {x: x + bar / 2, y: height + 2 * pad - 4, "font-size": 9, "text-anchor": "middle"},
      r[0].slice(5)));
  });
  $("day-chart").appendChild(chart);
})();
"""

REVISIONS_BODY = """<h1>compare two revisions</h1>
<p>Runs the suite at both revisions (as <code>promptci diff A B</code> does: models are called, the cache is
used), stores both runs, then compares them. Leave B empty for the working tree.</p>
<form id="rev-form">
<label>A <input id="rev-a" placeholder="main, HEAD~1, a commit"></label>
<label>B <input id="rev-b" placeholder="(working tree)"></label>
<button type="submit" id="rev-run">run and compare</button>
</form>
<p><progress id="rev-bar" value="0" max="1" hidden></progress> <span id="rev-progress"></span></p>
"""

REVISIONS_JS = _PAGE_HELPERS + r"""
  const {post} = window.promptciViewer;
  const start = new URLSearchParams(location.search);
  $("rev-a").value = start.get("a") || "";
  $("rev-b").value = start.get("b") || "";
  const say = (text) => { $("rev-progress").textContent = text; };
  async function poll(job) {
    const answer = await fetch("/api/jobs/" + encodeURIComponent(job), {credentials: "same-origin"});
    const state = await answer.json();
    $("rev-bar").hidden = false;
    $("rev-bar").max = Math.max(state.total, 1);
    $("rev-bar").value = state.done;
    say(state.done + " of " + (state.total || "?") + " results");
    if (state.error) say("diff failed: " + state.error);
    else if (state.finished && state.runs) location.href = link("compare", {a: state.runs[0], b: state.runs[1]});
    else setTimeout(() => poll(job), 300);
  }
  $("rev-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const a = $("rev-a").value.trim(), b = $("rev-b").value.trim();
    const query = new URLSearchParams({a: a, b: b}).toString();
    try { history.replaceState(null, "", location.pathname + "?" + query); } catch (e) { /* ignore */ }
    say("starting…");
    try { poll((await post("/api/diff", {a: a, b: b})).job); } catch (error) { say("not started: " + error.message); }
  });
})();
"""

"""The diff page's extra stylesheet and its one script. Like html_assets.py: every piece of data is rendered
with textContent, listeners are added with addEventListener (the policy allows no inline handler)."""

from promptci.reporting.html_assets import PAGE_CSS
from promptci.reporting.page import JS_HASH_FILTERS, JS_PRELUDE

DIFF_CSS = PAGE_CSS + """
.regressed,.new_failing{color:#cf222e;font-weight:600}.fixed{color:#1a7f37;font-weight:600}.new,.removed,.flaky{color:#9a6700}
.still_failing{color:#cf222e}.still_passing{color:#1a7f37}.panels.two{grid-template-columns:1fr 1fr}
#verdict{font-size:1.1em}
"""

DIFF_JS = JS_PRELUDE + r"""
  const pair = (p, digits) => num(p[0], digits) + " → " + num(p[1], digits);

  $("sides").textContent = data.header;
  $("verdict").textContent = data.verdict;
  for (const n of data.decision_notes) $("verdict").appendChild(el("div", "note: " + n));
  for (const line of data.statistics) $("statistics").appendChild(el("li", line));
  const groupBody = $("groups").tBodies[0];
  for (const g of data.groups) {
    const tr = groupBody.insertRow();
    for (const v of [g.prompt, g.model, pair(g.passed, 0) + " of " + pair(g.cases, 0), g.cost_text,
        pair(g.latency_ms, 0), pair(g.tokens, 0)]) tr.appendChild(el("td", v));
  }
  if (data.flaky.length) {
    $("flaky-section").hidden = false;
    for (const f of data.flaky) $("flaky").appendChild(el("li", f));
  }
  if (data.reliability.length) {
    $("reliability-section").hidden = false;
    for (const line of data.reliability) $("reliability").appendChild(el("li", line));
  }

  const unique = (key) => [...new Set(data.cases.map(key))].sort();
  function fill(select, values) { for (const v of values) select.appendChild(el("option", v)); }
  fill($("f-transition"), data.transitions.filter((t) => data.cases.some((c) => c.t === t)));
  fill($("f-prompt"), unique((c) => c.p));
  fill($("f-model"), unique((c) => c.m));
  const inputs = {transition: $("f-transition"), prompt: $("f-prompt"), model: $("f-model"), q: $("f-q")};
  const haystack = (c) => [c.p, c.c, c.f, c.m, c.oa, c.ob, ...c.why, ...c.rv.map((r) => r[1])].join("\n")
    .toLowerCase();

  function matches(c, f) {
    if (f.transition && c.t !== f.transition) return false;
    if (f.prompt && c.p !== f.prompt) return false;
    if (f.model && c.m !== f.model) return false;
    if (f.q && !haystack(c).includes(f.q)) return false;
    return true;
  }
  function block(title, text) {
    const panel = el("div", null, "panel");
    panel.appendChild(el("h4", title));
    panel.appendChild(el("pre", text === null || text === undefined ? "(none)" : text));
    return panel;
  }
  // A word diff marks removals [-like this-] and additions {+like this+}; anything else is shown as it is.
  function diffBlock(text) {
    const panel = el("div", null, "panel");
    panel.appendChild(el("h4", "output diff A → B"));
    const pre = el("pre");
    if (text === null || text === undefined) pre.textContent = "(no change)";
    else {
      const marks = /\[-([\s\S]*?)-\]|\{\+([\s\S]*?)\+\}/g;
      let last = 0, m;
      while ((m = marks.exec(text)) !== null) {
        pre.appendChild(document.createTextNode(text.slice(last, m.index)));
        pre.appendChild(m[1] !== undefined ? el("span", m[1], "del") : el("span", m[2], "add"));
        last = marks.lastIndex;
      }
      pre.appendChild(document.createTextNode(text.slice(last)));
    }
    panel.appendChild(pre);
    return panel;
  }
  function detail(c) {
    const tr = el("tr", null, "detail");
    const td = el("td");
    td.colSpan = 5;
    for (const r of c.rv) td.appendChild(el("div", r[1], "reviewed " + r[0]));  // a human's review, A or B
    for (const s of c.sc) td.appendChild(el("div", s[0] + ": " + num(s[1], 2) + " → " + num(s[2], 2)));
    for (const why of c.why) td.appendChild(el("div", why, "why"));
    td.appendChild(el("div", "cost " + c.usd_text + " · latency " + pair(c.ms, 0) + " ms"));
    if (c.pk) td.appendChild(el("div", c.pk));  // pass@k and pass^k, A -> B
    const panels = el("div", null, "panels");
    panels.appendChild(block("A: " + c.a, c.oa));
    panels.appendChild(block("B: " + c.b, c.ob));
    panels.appendChild(diffBlock(c.d));
    td.appendChild(panels);
    if (window.promptciCompareDetail) window.promptciCompareDetail(td, c);  // the viewer's history link
    tr.appendChild(td);
    return tr;
  }
  function render(expand) {
    const f = {};
    for (const [name, input] of Object.entries(inputs)) f[name] = input.value;
    f.q = f.q.toLowerCase();
    const body = document.createDocumentFragment();
    let shown = 0;
    for (const c of data.cases) {
      if (!matches(c, f)) continue;
      shown += 1;
      const tr = el("tr", null, "row");
      const cell = el("td", c.p + " / " + c.c + " [" + c.m + "] — " + c.f + ":" + c.l);
      for (const r of c.rv) cell.appendChild(el("span", " · " + r[1].split(" by ")[0], "reviewed " + r[0]));
      tr.appendChild(cell);
      tr.appendChild(el("td", c.t.replace("_", " "), c.t));
      tr.appendChild(el("td", c.a + (c.ra ? " (" + c.ra + ")" : ""), c.a));
      tr.appendChild(el("td", c.b + (c.rb ? " (" + c.rb + ")" : ""), c.b));
      tr.appendChild(el("td", c.pv === null ? "" : c.pv));
      tr.addEventListener("click", () => {
        const next = tr.nextSibling;
        if (next && next.classList.contains("detail")) next.remove();
        else tr.after(detail(c));
      });
      body.appendChild(tr);
      if (expand) body.appendChild(detail(c));
    }
    $("cases").tBodies[0].replaceChildren(body);
    const note = $("shown");
    note.textContent = "showing " + shown + " of " + data.cases.length + " cases";
    note.dataset.shown = String(shown);
  }
""" + JS_HASH_FILTERS + r"""
})();
"""

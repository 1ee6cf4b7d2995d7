"""What every promptci HTML page shares: the page shell, its Content-Security-Policy, the data embedded as
escaped JSON, and the script pieces both pages' scripts are built from.

Model output is untrusted. It reaches a page only as JSON inside <script type="application/json">
(with <, >, &, U+2028 and U+2029 escaped, so nothing can close the element), and the page's one script
renders it with textContent. The policy allows only that script and that stylesheet, by hash: an injected
<script> or onerror attribute could not run even if it reached the DOM.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

_JSON_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


class EmbeddedJSON(str):
    """JSON already made safe by embed_json: a page's data built once can be put in many pages as it is."""


def embed_json(value: Any) -> EmbeddedJSON:
    """JSON safe inside an HTML <script> element: no `</script>`, `<!--` or line separators survive."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char, escape in _JSON_ESCAPES.items():
        text = text.replace(char, escape)
    return EmbeddedJSON(text)


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(js: str, css: str, connect_src: str = "'none'") -> str:
    """Only the page's own script and stylesheet, by hash; nothing from anywhere else (the viewer's pages may
    also send requests to their own server: connect_src "'self'")."""
    return (f"default-src 'none'; script-src {csp_hash(js)}; style-src {csp_hash(css)}; "
            f"img-src 'none'; connect-src {connect_src}; base-uri 'none'; form-action 'none'")


_SHELL = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
{body}<script type="application/json" id="promptci-data">{data}</script>
<script>{js}</script>
</body>
</html>
"""


def render_page(title: str, body: str, css: str, js: str, data: Any, connect_src: str = "'none'") -> str:
    """A whole page: `body` is trusted markup (ours); `data` is embedded as escaped JSON for `js` to render
    (as it is when embed_json made it already)."""
    embedded = data if isinstance(data, EmbeddedJSON) else embed_json(data)
    return _SHELL.format(csp=content_security_policy(js, css, connect_src), title=title, css=css, body=body, js=js,
                         data=embedded)


# The start of every page's script: the data, and the helpers that build nodes with textContent only.
JS_PRELUDE = r"""
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
"""

# The cases table's filters kept in the URL's #fragment; expects `inputs` and `render(expand)` defined before.
JS_HASH_FILTERS = r"""
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
"""

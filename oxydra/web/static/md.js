// A small Markdown renderer that builds DOM nodes and never parses HTML.
//
// Why: model output is untrusted. Every piece of text reaches the page through
// document.createTextNode / textContent, so `<script>` or `<img onerror>` in a reply is shown
// as text, never run. Links keep only http(s) and mailto targets; images are rendered as
// links (an auto-loading image would send data to its host). Scans move forward with
// indexOf; past MAX_INLINE characters a line is left as plain text to bound the work.

const MAX_INLINE = 20000;
const SAFE_URL = /^(https?:\/\/|mailto:)/i;

function el(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

export function renderMarkdown(source) {
  const root = document.createDocumentFragment();
  const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = line.match(/^\s{0,3}(```|~~~)\s*([\w+-]*)\s*$/);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) body.push(lines[i++]);
      i += 1;
      const pre = el("pre");
      const code = el("code", body.join("\n"));
      if (fence[2]) code.dataset.lang = fence[2];
      pre.append(code);
      root.append(pre);
      continue;
    }
    const heading = line.match(/^\s{0,3}(#{1,6})\s+(.*)$/);
    if (heading) {
      const h = el("h" + Math.min(6, heading[1].length + 2));
      h.append(inline(heading[2].replace(/\s#+\s*$/, "")));
      root.append(h);
      i += 1;
      continue;
    }
    if (/^\s*$/.test(line)) { i += 1; continue; }
    if (/^\s{0,3}>/.test(line)) {
      const quoted = [];
      while (i < lines.length && /^\s{0,3}>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s{0,3}>\s?/, ""));
      const q = el("blockquote");
      q.append(renderMarkdown(quoted.join("\n")));
      root.append(q);
      continue;
    }
    const item = /^\s{0,3}([-*+]|\d{1,9}[.)])\s+/;
    if (item.test(line)) {
      const ordered = /^\s{0,3}\d/.test(line);
      const list = el(ordered ? "ol" : "ul");
      while (i < lines.length && item.test(lines[i])) {
        const li = el("li");
        let text = lines[i++].replace(item, "");
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !item.test(lines[i])) text += " " + lines[i++].trim();
        li.append(inline(text));
        list.append(li);
      }
      root.append(list);
      continue;
    }
    const para = [];
    while (i < lines.length && !/^\s*$/.test(lines[i]) && !/^\s{0,3}(```|~~~|#{1,6}\s|>)/.test(lines[i]) && !item.test(lines[i])) {
      para.push(lines[i++]);
    }
    const p = el("p");
    para.forEach((text, n) => {
      if (n) p.append(el("br"));
      p.append(inline(text));
    });
    root.append(p);
  }
  return root;
}

// Inline spans: `code`, **strong**, *em* / _em_, [text](url), ![alt](url) as a link.
export function inline(text) {
  const out = document.createDocumentFragment();
  if (text.length > MAX_INLINE) { out.append(document.createTextNode(text)); return out; }
  let plain = "";
  let i = 0;
  const flush = () => { if (plain) { out.append(document.createTextNode(plain)); plain = ""; } };
  while (i < text.length) {
    const c = text[i];
    if (c === "`") {
      const end = text.indexOf("`", i + 1);
      if (end > i) { flush(); out.append(el("code", text.slice(i + 1, end))); i = end + 1; continue; }
    } else if ((c === "*" || c === "_") && text[i + 1] === c) {
      const end = text.indexOf(c + c, i + 2);
      if (end > i + 2) { flush(); const s = el("strong"); s.append(inline(text.slice(i + 2, end))); out.append(s); i = end + 2; continue; }
    } else if ((c === "*" || c === "_") && text[i + 1] && text[i + 1] !== " ") {
      const end = text.indexOf(c, i + 1);
      if (end > i + 1 && text[end - 1] !== " ") { flush(); const e = el("em"); e.append(inline(text.slice(i + 1, end))); out.append(e); i = end + 1; continue; }
    } else if (c === "[" || (c === "!" && text[i + 1] === "[")) {
      const start = c === "!" ? i + 1 : i;
      const close = text.indexOf("](", start + 1);
      const paren = close > 0 ? text.indexOf(")", close + 2) : -1;
      if (close > 0 && paren > 0) {
        const label = text.slice(start + 1, close);
        const url = text.slice(close + 2, paren).trim();
        flush();
        if (SAFE_URL.test(url)) {
          const a = el("a", label || url);
          a.href = url;
          a.rel = "noopener noreferrer nofollow";
          a.target = "_blank";
          if (c === "!") a.title = "image (not loaded): " + url;
          out.append(a);
        } else {
          out.append(document.createTextNode(text.slice(i, paren + 1)));
        }
        i = paren + 1;
        continue;
      }
    }
    plain += c;
    i += 1;
  }
  flush();
  return out;
}

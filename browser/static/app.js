// Switchyard browser: local times, copy buttons, the live tail.
"use strict";

function localTimes(root) {
  for (const t of root.querySelectorAll("time[datetime]")) {
    const d = new Date(t.getAttribute("datetime"));
    if (isNaN(d)) continue;
    t.title = t.getAttribute("datetime");
    t.textContent = d.toLocaleString(undefined, {
      year: "numeric", month: "short", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", fractionalSecondDigits: 3,
    });
  }
}

// copy puts text on the clipboard: through the Clipboard API where the
// page may use it, else through a selected text area.
function copy(text) {
  const fallback = () => {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  };
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text).catch(fallback);
  fallback();
  return Promise.resolve();
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button.copy");
  if (!b) return;
  copy(b.dataset.copy).then(() => {
    b.classList.add("done");
    b.textContent = "copied";
    setTimeout(() => { b.classList.remove("done"); b.textContent = "copy"; }, 1200);
  });
});

function cell(row, ...nodes) {
  const td = row.insertCell();
  td.append(...nodes);
  return td;
}

function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}

// hue is funcs.go's: FNV-1a of the name's UTF-8 bytes, modulo 12.
function hue(name) {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % 12;
}

// short is funcs.go's: the random tail of a UUIDv7, not its time head.
function short(id) {
  const r = [...id];
  return r.length <= 13 ? id : "…" + r.slice(-8).join("");
}

// idCell is parts.html's "id": the short id, the whole on hover, a copy button.
function idCell(id) {
  const span = document.createElement("span");
  span.className = "id";
  const code = document.createElement("code");
  code.title = id;
  code.textContent = short(id);
  const b = document.createElement("button");
  b.className = "copy";
  b.type = "button";
  b.dataset.copy = id;
  b.title = "Copy " + id;
  b.textContent = "copy";
  span.append(code, b);
  return span;
}

function badge(cls, text) {
  const s = document.createElement("span");
  s.className = "badge " + cls + " h" + hue(text);
  s.textContent = text;
  return s;
}

function tail(table) {
  const body = table.tBodies[0];
  const state = document.getElementById("tail-state");
  const src = new EventSource(table.dataset.src);
  src.onopen = () => { state.textContent = "Live: new events appear at the top."; };
  src.onerror = () => {
    state.textContent = src.readyState === EventSource.CLOSED
      ? "Disconnected: the server refused the tail. Reload the page to try again."
      : "Disconnected; reconnecting…";
  };
  src.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    const row = body.insertRow(0);
    row.className = "fresh";
    if (ev.error) {
      cell(row, "");
      cell(row, "");
      cell(row, "undecodable: " + ev.error).className = "bad";
      cell(row, ev.stream); cell(row, ""); cell(row, ""); cell(row, "");
    } else {
      const t = document.createElement("time");
      t.setAttribute("datetime", ev.recorded_at);
      t.textContent = ev.recorded_at;
      cell(row, t);
      cell(row, badge("ctx", ev.context), badge("shard", ev.shard));
      const store = "stores/" + encodeURIComponent(ev.context) + "/" + encodeURIComponent(ev.shard);
      cell(row, link(store + "/events/" + ev.id, ev.type));
      cell(row, idCell(ev.id));
      cell(row, link(store + "/streams/" + encodeURIComponent(ev.stream) + "?from=" + ev.version, ev.stream));
      cell(row, String(ev.version)).className = "num";
      if (ev.correlation_id) {
        const a = link("chains/" + encodeURIComponent(ev.correlation_id), short(ev.correlation_id));
        a.title = ev.correlation_id;
        cell(row, a);
      } else {
        cell(row, "");
      }
      localTimes(row);
    }
    while (body.rows.length > 500) body.deleteRow(-1);
  };
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const t = document.getElementById("tail");
  if (t) tail(t);
});

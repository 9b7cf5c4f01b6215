// The configurator page: REST under /api/v1, every state change with the CSRF token.
// Values from the server (including model and config text) are set with textContent or
// input.value only, never parsed as HTML. Secrets arrive masked; a masked value sent back
// unchanged keeps the stored one.

const $ = (id) => document.getElementById(id);
const MASK = "********";
const state = { csrf: null, file: "agent", tree: {}, logs: null };

async function api(method, path, body) {
  const headers = { "X-CSRF-Token": state.csrf || "" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch("/api/v1" + path, {
    method, credentials: "same-origin", headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(json.error ? json.error.message : res.statusText), { status: res.status, error: json.error });
  return json.data;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  row.append(td);
  return td;
}

function notify(text) { $("notice").textContent = text; }

// ---- sign-in --------------------------------------------------------------------------

async function boot() {
  try {
    const session = await api("GET", "/auth/session");
    state.csrf = session.csrf_token;
    return enter();
  } catch (err) {
    if (err.status === 401) { $("signin").hidden = false; $("token").focus(); return; }
    notify("Cannot reach the configurator: " + err.message);
  }
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("token").value;
  $("token").value = "";
  const res = await fetch("/api/v1/auth/signin", { method: "POST", credentials: "same-origin", headers: { Authorization: "Bearer " + token } });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) { $("signin-error").textContent = json.error ? json.error.message : "Refused."; return; }
  state.csrf = json.data.csrf_token;
  $("signin").hidden = true;
  enter();
});

async function enter() {
  $("app").hidden = false;
  const meta = await api("GET", "/meta");
  $("meta").textContent = `v${meta.version} · ${meta.paths.runner_config}` + (meta.host.low_memory ? " · low memory" : "");
  await Promise.all([guests(), tabs(), effective(), models(), onboarding()]);
}

// ---- guests ---------------------------------------------------------------------------

async function guests() {
  const body = $("guests");
  const list = await api("GET", "/status");
  body.replaceChildren();
  for (const g of list) {
    const tr = document.createElement("tr");
    cell(tr, g.user_id);
    cell(tr, g.running ? (g.healthy ? "running" : "unhealthy") : "stopped");
    cell(tr, g.tier);
    const actions = cell(tr, "");
    for (const action of ["start", "stop", "restart", "logs"]) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = action === "logs" ? "ghost" : "";
      b.textContent = action[0].toUpperCase() + action.slice(1);
      b.setAttribute("aria-label", `${b.textContent} ${g.user_id}`);
      b.onclick = () => (action === "logs" ? showLogs(g.user_id) : control(g.user_id, action));
      actions.append(b, " ");
    }
    body.append(tr);
  }
}

async function control(user, action) {
  try {
    await api("POST", `/control/${encodeURIComponent(user)}/${action}`);
    notify(`${action} requested for ${user}.`);
    setTimeout(guests, 1500);
  } catch (err) { notify(err.message); }
}

function showLogs(user) {
  // followed as server-sent events: each new line arrives as it is written
  if (state.logs) state.logs.close();
  const pre = $("logs");
  pre.hidden = false;
  pre.textContent = "";
  const source = new EventSource(`/api/v1/logs/${encodeURIComponent(user)}?follow=1&tail=200`);
  source.onmessage = (event) => {
    const e = JSON.parse(event.data);
    pre.append(document.createTextNode(`${e.timestamp || ""} ${e.role}/${e.stream} ${e.message}\n`));
    pre.scrollTop = pre.scrollHeight;
  };
  state.logs = source;
}

// ---- config files ---------------------------------------------------------------------

async function tabs() {
  const users = await api("GET", "/config/users");
  const box = $("file-tabs");
  box.replaceChildren();
  const names = ["agent", "runner", ...users.map((u) => "users/" + u.user_id)];
  for (const name of names) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost";
    b.setAttribute("role", "tab");
    b.textContent = name === "agent" ? "agent.toml" : name === "runner" ? "runner.toml" : name + ".toml";
    b.setAttribute("aria-selected", String(name === state.file));
    b.onclick = () => { state.file = name; tabs(); };
    box.append(b);
  }
  await loadFile();
}

function filePath() {
  return state.file.startsWith("users/") ? "/config/users/" + encodeURIComponent(state.file.slice(6)) : "/config/" + state.file;
}

function flatten(tree, prefix = "", out = []) {
  for (const [k, v] of Object.entries(tree)) {
    const key = prefix ? prefix + "." + k : k;
    if (v && typeof v === "object" && !Array.isArray(v)) flatten(v, key, out);
    else out.push([key, v]);
  }
  return out;
}

async function loadFile() {
  state.tree = await api("GET", filePath());
  const form = $("file-form");
  form.replaceChildren();
  for (const [key, value] of flatten(state.tree)) addField(key, value);
  $("errors").replaceChildren();
}

function addField(key, value) {
  const form = $("file-form");
  const id = "f-" + key.replace(/[^A-Za-z0-9_-]/g, "_");
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = key;
  const input = document.createElement("input");
  input.id = id;
  input.dataset.key = key;
  input.dataset.kind = Array.isArray(value) ? "json" : typeof value;
  input.dataset.original = JSON.stringify(value);
  input.value = typeof value === "string" ? value : JSON.stringify(value);
  if (value === MASK) input.type = "password";
  const err = document.createElement("div");
  err.className = "field-error";
  err.id = id + "-error";
  input.setAttribute("aria-describedby", err.id);
  form.append(label, input, err);
}

function parseValue(input) {
  const text = input.value;
  if (input.dataset.kind === "string") return text;
  try { return JSON.parse(text); } catch { return text; } // a bad type goes to the server, which says so
}

function setPath(tree, key, value) {
  const parts = key.split(".");
  let node = tree;
  for (const p of parts.slice(0, -1)) node = node[p] = node[p] || {};
  node[parts.at(-1)] = value;
}

async function save() {
  const patch = {};
  for (const input of $("file-form").querySelectorAll("input")) {
    const value = parseValue(input);
    if (JSON.stringify(value) !== input.dataset.original) setPath(patch, input.dataset.key, value);
  }
  for (const err of $("file-form").querySelectorAll(".field-error")) err.textContent = "";
  for (const input of $("file-form").querySelectorAll("input")) input.removeAttribute("aria-invalid");
  $("errors").replaceChildren();
  try {
    const result = await api("PATCH", filePath(), patch);
    $("diff").hidden = false;
    $("diff").textContent = result.diff || "(no change)";
    notify(result.backup ? `Saved; the previous file is kept as ${result.backup}.` : "Saved.");
    await loadFile();
    effective();
  } catch (err) {
    const details = (err.error && err.error.details) || [];
    for (const d of details) {
      const input = [...$("file-form").querySelectorAll("input")].find((i) => i.dataset.key === d.field);
      if (input) {
        input.setAttribute("aria-invalid", "true");
        $(input.id + "-error").textContent = d.message;
      } else {
        const li = document.createElement("li");
        li.textContent = d.message;
        $("errors").append(li);
      }
    }
    if (!details.length) notify(err.message);
  }
}

$("save").addEventListener("click", save);
$("add-key").addEventListener("click", () => {
  const key = $("new-key").value.trim();
  if (!key) return;
  addField(key, null);
  const input = [...$("file-form").querySelectorAll("input")].at(-1);
  input.dataset.kind = "json";
  input.value = $("new-value").value;
  $("new-key").value = $("new-value").value = "";
  input.focus();
});

// ---- read-only views ------------------------------------------------------------------

async function effective() {
  const body = $("effective");
  try {
    const eff = await api("GET", "/config/agent/effective");
    body.replaceChildren();
    for (const v of eff.values) {
      const tr = document.createElement("tr");
      cell(tr, v.key); cell(tr, JSON.stringify(v.value)); cell(tr, v.source);
      body.append(tr);
    }
  } catch (err) {
    body.replaceChildren();
    const tr = document.createElement("tr");
    cell(tr, err.message).colSpan = 3;
    body.append(tr);
  }
}

async function models() {
  const catalog = await api("GET", "/catalog");
  const body = $("models");
  body.replaceChildren();
  for (const m of catalog.models) {
    const tr = document.createElement("tr");
    cell(tr, m.provider); cell(tr, m.name || m.id);
    cell(tr, m.cost ? m.cost.input : ""); cell(tr, m.cost ? m.cost.output : "");
    body.append(tr);
  }
}

async function onboarding() {
  const status = await api("GET", "/onboarding/status");
  $("onboarding").hidden = status.has_provider_key;
}

$("onboard-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const provider = $("onboard-provider").value;
  const key = $("onboard-key").value;
  $("onboard-key").value = "";
  const entry = { provider_type: provider === "gemini" ? "gemini" : provider, api_key: key };
  try {
    await api("PATCH", "/config/agent", { providers: { registry: { [provider]: entry } } });
    notify(`Key saved for ${provider} (shown masked from now on).`);
    onboarding(); loadFile();
  } catch (err) { notify(err.message); }
});

boot();

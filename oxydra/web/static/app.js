// The chat page: sign-in, then the gateway protocol (v2) over /ws with the session cookie.
//
// What the page keeps: the CSRF token in memory only; in sessionStorage the current session
// id and the prompts it sent (by turn id), so a reload can show them again. Never the token.
// Streaming: frames carry `seq`; after a dropped connection the page says hello with the
// last `seq` it rendered and the server replays exactly what it missed. A reload starts
// from an empty page and asks for everything kept (last_seq 0), so nothing is doubled.

import { renderMarkdown } from "./md.js";

const $ = (id) => document.getElementById(id);
const state = {
  user: null, csrf: null, ws: null, sessionId: null, epoch: null, lastSeq: 0,
  listed: [], showArchived: false,
  turns: new Map(), active: null, retry: 0, closing: false,
};
const store = {
  get session() { return sessionStorage.getItem("oxydra.session"); },
  set session(id) { sessionStorage.setItem("oxydra.session", id); },
  prompt(turnId) { return sessionStorage.getItem("oxydra.prompt." + turnId); },
  keepPrompt(turnId, text) { sessionStorage.setItem("oxydra.prompt." + turnId, text); },
};
const rid = () => crypto.randomUUID();

// ---- sign-in ------------------------------------------------------------------------

async function boot() {
  const res = await fetch("/auth/session", { credentials: "same-origin" });
  if (res.ok) return enter(await res.json());
  showSignIn();
}

function showSignIn(message = "") {
  $("app").hidden = true;
  $("signin").hidden = false;
  $("signin-error").textContent = message;
  $("token").focus();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("token");
  const token = input.value.trim();
  input.value = "";
  const res = await fetch("/auth/signin", {
    method: "POST", credentials: "same-origin", headers: { Authorization: "Bearer " + token },
  });
  if (res.ok) return enter(await res.json());
  const retry = res.headers.get("Retry-After");
  showSignIn(res.status === 429 ? `Too many attempts; try again in ${retry} s.` : "Wrong token.");
});

$("signout").addEventListener("click", async () => {
  await fetch("/auth/signout", {
    method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": state.csrf },
  });
  state.closing = true;
  if (state.ws) state.ws.close();
  state.csrf = null;
  showSignIn("Signed out.");
});

function enter(info) {
  state.user = info.user_id;
  state.csrf = info.csrf_token;
  $("who").textContent = info.user_id;
  $("signin").hidden = true;
  $("app").hidden = false;
  connect(store.session, 0);
  $("prompt").focus();
}

// ---- connection ---------------------------------------------------------------------

function connect(sessionId, lastSeq, createNew = false) {
  state.closing = false;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  state.ws = ws;
  setConn("connecting");
  ws.onopen = () => {
    const hello = { request_id: rid(), protocol_version: 2, user_id: state.user };
    if (sessionId) hello.session_id = sessionId;
    if (createNew) hello.create_new_session = true;
    if (sessionId && state.epoch) hello.epoch = state.epoch;
    hello.last_seq = lastSeq;
    send("hello", hello);
  };
  ws.onmessage = (event) => onFrame(JSON.parse(event.data));
  ws.onclose = (event) => {
    if (ws !== state.ws) return;
    setConn("offline");
    if (state.closing) return;
    if (event.code === 1008) {
      // refused hello (e.g. the remembered session is gone): start over on the default one
      if (sessionId && state.lastSeq === 0) { sessionStorage.removeItem("oxydra.session"); }
      return recheck();
    }
    const delay = Math.min(8000, 250 * 2 ** state.retry++);
    setTimeout(() => recheck(), delay);
  };
}

async function recheck() {
  const res = await fetch("/auth/session", { credentials: "same-origin" }).catch(() => null);
  if (res && res.status === 401) return showSignIn("Your session ended; sign in again.");
  if (!res || !res.ok) return setTimeout(recheck, 2000);
  connect(store.session || state.sessionId, state.lastSeq);
}

function send(type, payload) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type, payload }));
    return true;
  }
  return false;
}

function setConn(text) {
  $("conn").textContent = text;
  $("conn").dataset.state = text;
}

// ---- frames -------------------------------------------------------------------------

function onFrame(frame) {
  const p = frame.payload || {};
  const handshake = ["hello_ack", "session_switched", "session_created"].includes(frame.type);
  if (!handshake && typeof p.seq === "number") {
    if (p.seq <= state.lastSeq) return; // already rendered
    state.lastSeq = p.seq;
  }
  switch (frame.type) {
    case "hello_ack":
    case "session_switched":
    case "session_created": return bound(p);
    case "turn_started": return turnOf(p.turn.turn_id, true);
    case "assistant_delta": return appendDelta(p);
    case "turn_progress": return progress(p);
    case "approval_request": return approval(p);
    case "usage": return usage(p);
    case "turn_completed": return finish(p.turn, p.response);
    case "turn_cancelled": return finish(p.turn);
    case "error": return failure(p);
    case "session_list": return sessions(p.sessions);
    case "session_updated": return updated(p);
    case "scheduled_notification": return notice(`${p.schedule_name || "schedule"}: ${p.message}`);
    default: return undefined;
  }
}

function bound(p) {
  const sid = p.session.session_id;
  const fresh = sid !== state.sessionId || (p.epoch && state.epoch && p.epoch !== state.epoch);
  if (fresh) clearLog();
  state.sessionId = sid;
  state.epoch = p.epoch || state.epoch;
  state.retry = 0;
  store.session = sid;
  setConn("open");
  title(sid, p.display_name);
  setActive(p.active_turn && p.active_turn.state === "running" ? p.active_turn.turn_id : null);
  listSessions();
}

function title(sessionId, name) {
  $("session-title").textContent = name || "Session " + shortId(sessionId);
}

function listSessions() {
  send("list_sessions", { request_id: rid(), include_archived: state.showArchived });
}

function shortId(id) {
  return id.length > 20 ? id.slice(0, 8) : id;
}

function clearLog() {
  $("log").replaceChildren();
  state.turns.clear();
  state.lastSeq = 0;
  $("cost").textContent = "";
}

function turnOf(turnId, started = false) {
  let turn = state.turns.get(turnId);
  if (!turn) {
    const box = document.createElement("div");
    box.className = "turn";
    box.dataset.turn = turnId;
    const prompt = store.prompt(turnId);
    if (prompt !== null) {
      const mine = document.createElement("div");
      mine.className = "msg user";
      mine.textContent = prompt;
      box.append(mine);
    }
    const tools = document.createElement("div");
    const answer = document.createElement("div");
    answer.className = "msg assistant";
    const status = document.createElement("div");
    status.className = "state";
    box.append(tools, answer, status);
    $("log").append(box);
    turn = { box, tools, answer, status, text: "", drawn: false };
    state.turns.set(turnId, turn);
  }
  if (started) { setActive(turnId); setState(turn, "running"); }
  return turn;
}

function setState(turn, text) {
  turn.status.textContent = text === "completed" ? "" : text;
  turn.status.dataset.state = text;
}

function appendDelta(p) {
  const turn = turnOf(p.turn.turn_id);
  turn.text += p.delta;
  if (turn.drawn) return;
  // the first delta after a quiet spell is drawn at once; a burst is batched into one render
  const wait = 30 - (performance.now() - (turn.lastDraw || 0));
  if (wait <= 0) return draw(turn);
  turn.drawn = true;
  setTimeout(() => draw(turn), wait);
}

function draw(turn) {
  turn.drawn = false;
  turn.lastDraw = performance.now();
  turn.answer.replaceChildren(renderMarkdown(turn.text));
  scrollDown();
}

function progress(p) {
  const kind = p.progress && p.progress.kind;
  if (!kind || kind.kind !== "tool_execution") return;
  const turn = turnOf(p.turn.turn_id);
  const details = document.createElement("details");
  details.className = "tool";
  const summary = document.createElement("summary");
  summary.textContent = "Tool: " + kind.tool_names.join(", ");
  const body = document.createElement("pre");
  body.textContent = kind.tool_names.map((n) => "called " + n).join("\n");
  details.append(summary, body);
  turn.tools.append(details);
}

function approval(p) {
  const turn = turnOf(p.turn.turn_id);
  const card = document.createElement("div");
  card.className = "approval";
  card.setAttribute("role", "group");
  const title = document.createElement("strong");
  title.textContent = `Allow ${p.tool_name}?`;
  card.setAttribute("aria-label", title.textContent);
  const args = document.createElement("pre");
  args.textContent = JSON.stringify(p.arguments, null, 2);
  const why = document.createElement("div");
  why.className = "muted";
  why.textContent = p.reason ? p.reason : `${p.safety_tier}; expires in ${p.expires_in_secs} s`;
  const actions = document.createElement("div");
  actions.className = "actions";
  const answer = (approved) => () => {
    send("approval_response", { request_id: rid(), approval_id: p.approval_id, approved });
    actions.replaceChildren(document.createTextNode(approved ? "Approved." : "Denied."));
    args.remove(); // answered: keep the card short
    why.remove();
  };
  const yes = document.createElement("button");
  yes.type = "button"; yes.textContent = "Approve"; yes.onclick = answer(true);
  const no = document.createElement("button");
  no.type = "button"; no.className = "danger"; no.textContent = "Deny"; no.onclick = answer(false);
  actions.append(yes, no);
  card.append(title, why, args, actions);
  turn.tools.append(card);
  yes.focus();
  scrollDown();
}

function usage(p) {
  const t = p.total;
  const money = t.cost_usd === null || t.cost_usd === undefined ? "cost unknown" : `$${t.cost_usd.toFixed(4)}`;
  $("cost").textContent = `${money} · ${t.input_tokens + t.output_tokens} tokens`;
}

function finish(status, response) {
  const turn = turnOf(status.turn_id);
  if (!turn.text && response) turn.text = textOf(response.message);
  draw(turn);
  setState(turn, status.state);
  if (state.active === status.turn_id) setActive(null);
  if (status.state === "completed" && !turn.traceButton) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "ghost small";
    b.textContent = "Trace";
    b.setAttribute("aria-label", "Show where this turn's time went");
    b.onclick = () => showTrace(status.turn_id, turn);
    turn.traceButton = b;
    turn.box.append(b);
  }
}

async function showTrace(turnId, turn) {
  const url = "/api/trace/" + encodeURIComponent(turnId);
  let res = await fetch(url, { credentials: "same-origin" });
  // the trace is stored just after the turn ends: give the writer a moment
  for (let tries = 0; res.status === 404 && tries < 10; tries += 1) {
    await new Promise((done) => setTimeout(done, 300));
    res = await fetch(url, { credentials: "same-origin" });
  }
  const old = turn.box.querySelector(".waterfall, .trace-note");
  if (old) old.remove();
  if (!res.ok) {
    const note = document.createElement("div");
    note.className = "notice trace-note";
    note.textContent = res.status === 404 ? "No trace stored for this turn." : "Cannot load the trace.";
    turn.box.append(note);
    return;
  }
  turn.box.append(waterfall((await res.json()).spans));
}

// A turn's spans on a shared time axis, children under their parent in start order.
function waterfall(spans) {
  const grid = document.createElement("div");
  grid.className = "waterfall";
  grid.setAttribute("role", "table");
  grid.setAttribute("aria-label", "Trace waterfall");
  const ids = new Set(spans.map((s) => s.span_id));
  const kids = new Map();
  for (const s of spans) {
    const parent = ids.has(s.parent_id) ? s.parent_id : null;
    if (!kids.has(parent)) kids.set(parent, []);
    kids.get(parent).push(s);
  }
  for (const list of kids.values()) list.sort((a, b) => a.start_ns - b.start_ns);
  const start = Math.min(...spans.map((s) => s.start_ns));
  const total = Math.max(1, Math.max(...spans.map((s) => s.end_ns)) - start);
  const stack = (kids.get(null) || []).map((s) => [s, 0]).reverse();
  while (stack.length) {
    const [span, depth] = stack.pop();
    const name = document.createElement("div");
    name.className = "name";
    name.setAttribute("role", "cell");
    name.textContent = "\u00a0\u00a0".repeat(depth) + span.name;
    const track = document.createElement("div");
    track.className = "track";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.dataset.error = String(Boolean(span.error));
    bar.style.left = ((span.start_ns - start) / total) * 100 + "%";
    bar.style.width = ((span.end_ns - span.start_ns) / total) * 100 + "%";
    track.append(bar);
    const ms = document.createElement("div");
    ms.className = "ms";
    ms.textContent = ((span.end_ns - span.start_ns) / 1e6).toFixed(1) + " ms";
    grid.append(name, track, ms);
    for (const child of (kids.get(span.span_id) || []).slice().reverse()) stack.push([child, depth + 1]);
  }
  return grid;
}

async function showJobs() {
  const panel = $("jobs");
  const open = panel.hidden;
  panel.hidden = !open;
  $("jobs-toggle").setAttribute("aria-expanded", String(open));
  if (!open) return;
  panel.replaceChildren(document.createTextNode("Loading…"));
  const res = await fetch("/api/schedules", { credentials: "same-origin" });
  const list = res.ok ? (await res.json()).schedules : [];
  panel.replaceChildren();
  if (!list.length) panel.append(document.createTextNode("No scheduled jobs."));
  for (const job of list) {
    const h = document.createElement("h3");
    h.textContent = `${job.name || job.goal} · ${job.status}` + (job.next_run_at ? ` · next ${job.next_run_at}` : "");
    const runs = document.createElement("ul");
    for (const run of job.runs) {
      const li = document.createElement("li");
      li.textContent = `${run.started_at} ${run.status}` + (run.output_summary ? ": " + run.output_summary : "");
      runs.append(li);
    }
    if (!job.runs.length) runs.append(Object.assign(document.createElement("li"), { textContent: "no runs yet" }));
    panel.append(h, runs);
  }
}

function textOf(message) {
  const content = message && message.content;
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.filter((c) => c.text).map((c) => c.text).join("");
  return "";
}

function failure(p) {
  if (p.turn) {
    const turn = turnOf(p.turn.turn_id);
    setState(turn, "failed: " + p.message);
    if (state.active === p.turn.turn_id) setActive(null);
  } else {
    notice("Error: " + p.message);
  }
}

function notice(text) {
  const div = document.createElement("div");
  div.className = "notice";
  div.textContent = text;
  $("log").append(div);
  scrollDown();
}

function sessions(list) {
  state.listed = list;
  const open = list.find((o) => o.session_id === state.sessionId);
  if (open) title(open.session_id, open.display_name);
  const ul = $("sessions");
  ul.replaceChildren();
  for (const s of list) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = s.display_name || shortId(s.session_id);
    const small = document.createElement("small");
    small.textContent = (s.last_active_at || "").replace("T", " ").slice(0, 16);
    b.append(small);
    b.setAttribute("aria-current", String(s.session_id === state.sessionId));
    b.onclick = () => switchTo(s.session_id);
    li.append(b);
    if (s.archived) {
      li.className = "archived";
      const restore = document.createElement("button");
      restore.type = "button";
      restore.className = "link restore";
      restore.textContent = "Restore";
      restore.setAttribute("aria-label", "Restore " + (s.display_name || shortId(s.session_id)));
      restore.onclick = () => send("unarchive_session", { request_id: rid(), session_id: s.session_id });
      li.append(restore);
    }
    ul.append(li);
  }
}

// This page renamed, archived or restored a session: the list follows; archiving the open
// session moves to the newest other one, or to a new one.
function updated(p) {
  const s = p.session;
  if (s.session_id === state.sessionId) {
    if (p.action === "renamed") title(s.session_id, s.display_name);
    if (p.action === "archived") {
      const next = state.listed.find((o) => o.session_id !== s.session_id && !o.archived);
      if (next) switchTo(next.session_id);
      else if (!send("create_session", { request_id: rid() })) connect(null, 0, true);
      return;
    }
  }
  listSessions();
}

function startRename() {
  const form = $("rename-form");
  const input = $("rename-input");
  const current = state.listed.find((o) => o.session_id === state.sessionId);
  input.value = (current && current.display_name) || "";
  $("session-title").hidden = true;
  form.hidden = false;
  input.focus();
}

function endRename(save) {
  const form = $("rename-form");
  if (form.hidden) return;
  if (save && state.sessionId) {
    send("rename_session", {
      request_id: rid(), session_id: state.sessionId, display_name: $("rename-input").value.trim(),
    });
  }
  form.hidden = true;
  $("session-title").hidden = false;
}

function switchTo(sessionId) {
  if (sessionId === state.sessionId) return;
  state.closing = true;
  if (state.ws) state.ws.close();
  state.epoch = null;
  clearLog();
  state.sessionId = null;
  connect(sessionId, 0);
}

function setActive(turnId) {
  state.active = turnId;
  $("cancel").hidden = !turnId;
}

function scrollDown() {
  const log = $("log");
  log.scrollTop = log.scrollHeight;
}

// ---- composing ----------------------------------------------------------------------

function submit() {
  const box = $("prompt");
  const text = box.value;
  if (!text.trim() || !state.sessionId) return;
  const turnId = rid();
  store.keepPrompt(turnId, text);
  if (send("send_turn", { request_id: rid(), session_id: state.sessionId, turn_id: turnId, prompt: text })) {
    box.value = "";
  }
}

function cancel() {
  if (state.active) send("cancel_active_turn", { request_id: rid(), session_id: state.sessionId, turn_id: state.active });
}

$("composer").addEventListener("submit", (event) => { event.preventDefault(); submit(); });
$("cancel").addEventListener("click", cancel);
$("jobs-toggle").addEventListener("click", showJobs);
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); submit(); }
});
document.addEventListener("keydown", (event) => { if (event.key === "Escape") cancel(); });
$("rename").addEventListener("click", startRename);
$("rename-form").addEventListener("submit", (event) => { event.preventDefault(); endRename(true); });
$("rename-input").addEventListener("keydown", (event) => {
  if (event.key === "Escape") { event.stopPropagation(); endRename(false); }
});
$("archive").addEventListener("click", () => {
  if (state.sessionId) send("archive_session", { request_id: rid(), session_id: state.sessionId });
});
$("archived-toggle").addEventListener("click", () => {
  state.showArchived = !state.showArchived;
  $("archived-toggle").setAttribute("aria-pressed", String(state.showArchived));
  $("archived-toggle").textContent = state.showArchived ? "Hide archived" : "Show archived";
  listSessions();
});
$("new-session").addEventListener("click", () => {
  if (!send("create_session", { request_id: rid() })) connect(null, 0, true);
});

boot();

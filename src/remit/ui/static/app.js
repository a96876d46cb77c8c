// remit ui: the page. Plain JavaScript, no framework, no build step.
//
// A run's tasks arrive as flat rows (parent first) in a "snapshot" event, then as
// "patch" events carrying only the rows that changed. The tree draws only the rows in
// view: the visible list (the expanded part of the tree) is recomputed when the shape
// changes, and each scroll or update redraws the ~60 rows on screen, so a tree of
// thousands of tasks costs what a screenful costs.
"use strict";

const ROW = 26;          // px; must match --row in style.css
const OVERSCAN = 12;     // rows drawn above and below the view
const OPEN_DEPTH = 1;    // tasks this deep or less start expanded

const $ = (id) => document.getElementById(id);
const state = {
  runId: null, source: null, nodes: new Map(), kids: new Map(), expanded: new Set(),
  visible: [], selected: null, snap: null, shapeDirty: true, frame: 0, detailTimer: 0,
};

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
function api(path, opts) {
  return fetch(path, opts).then(async (r) => {
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(`${body.code || r.status}: ${body.message || r.statusText}`);
    return body;
  });
}
function secs(s) {
  if (s == null) return "";
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 90) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 90 ? `${m}m${Math.round(s % 60)}s` : `${Math.floor(m / 60)}h${m % 60}m`;
}
function spendText(spent, budget) {
  const b = budget || {}, s = spent || {}, parts = [];
  if (s.calls || b.calls != null) parts.push(`${s.calls || 0}${b.calls != null ? "/" + b.calls : ""} calls`);
  const tok = (s.input_tokens || 0) + (s.output_tokens || 0);
  if (tok || b.input_tokens != null) parts.push(`${tok} tok`);
  if (s.cost_usd || b.cost_usd != null) parts.push(`$${(s.cost_usd || 0).toFixed(4)}${b.cost_usd != null ? "/$" + b.cost_usd.toFixed(2) : ""}`);
  return parts.join(" · ") || "nothing spent";
}
function bar(frac) {
  if (frac == null) return `<span class="bar" title="no limit"></span>`;
  const cls = frac >= 1 ? "over" : frac >= 0.8 ? "warn" : "";
  return `<span class="bar ${cls}" title="${Math.round(frac * 100)}% of its own budget"><i style="width:${Math.min(100, frac * 100)}%"></i></span>`;
}
function status(s) { return `<span class="st st-${esc(s)}">${esc(s)}</span>`; }

// --- runs ------------------------------------------------------------------------------

async function loadRuns() {
  try {
    const data = await api("/api/runs");
    $("journal").textContent = data.journal;
    $("runlist").innerHTML = data.runs.map((r) => `
      <li data-run="${esc(r.id)}" class="${r.id === state.runId ? "sel" : ""}">
        <div class="goal">${status(r.state)} ${esc(r.goal)}</div>
        <div class="meta">${esc(r.id)} · ${new Date(r.created_at * 1000).toLocaleString()}</div>
      </li>`).join("");
  } catch (e) { $("runlist").innerHTML = `<li class="err">${esc(e.message)}</li>`; }
}
$("runlist").addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-run]");
  if (li) location.hash = `#/run/${encodeURIComponent(li.dataset.run)}`;
});

// --- a run: the live stream -----------------------------------------------------------

function openRun(runId) {
  if (state.source) state.source.close();
  Object.assign(state, { runId, nodes: new Map(), kids: new Map(), expanded: new Set(), visible: [], selected: null, snap: null, shapeDirty: true });
  $("empty").hidden = !!runId;
  $("runview").hidden = !runId;
  $("detail").innerHTML = `<div class="dim pad">Click a task to see its remit, calls and denials.</div>`;
  if (!runId) return;
  const src = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  state.source = src;
  src.addEventListener("snapshot", (ev) => applySnapshot(JSON.parse(ev.data)));
  src.addEventListener("patch", (ev) => applyPatch(JSON.parse(ev.data)));
  src.onopen = () => $("live").classList.add("on");
  src.onerror = () => $("live").classList.remove("on");
  loadRuns();
}

function putNode(n) {
  const old = state.nodes.get(n.id);
  state.nodes.set(n.id, n);
  if (!old && n.parent != null) {
    const list = state.kids.get(n.parent) || [];
    list.push(n.id);
    if (list.length > 1) {  // keep siblings in plan order (a patch may bring them late)
      const a = state.nodes.get(list[list.length - 2]);
      if (a && (a.pos[0] > n.pos[0] || (a.pos[0] === n.pos[0] && a.pos[1] > n.pos[1]))) {
        list.sort((x, y) => { const p = state.nodes.get(x).pos, q = state.nodes.get(y).pos; return p[0] - q[0] || p[1] - q[1]; });
      }
    }
    state.kids.set(n.parent, list);
    state.shapeDirty = true;
  }
  if (!old && n.depth <= OPEN_DEPTH) state.expanded.add(n.id);
}

function applySnapshot(snap) {
  const first = state.nodes.size === 0;
  state.nodes = new Map(); state.kids = new Map(); state.shapeDirty = true;
  const keep = first ? null : new Set(state.expanded);
  for (const n of snap.nodes) putNode(n);
  if (keep) state.expanded = keep;
  state.snap = snap;
  drawHead(); schedule();
}

function applyPatch(p) {
  for (const n of p.nodes) putNode(n);
  Object.assign(state.snap, { run: p.run, summary: p.summary, budget: p.budget, approvals: p.approvals });
  drawHead(); schedule();
  if (state.selected && p.nodes.some((n) => n.id === state.selected)) refreshDetail();
}

// --- the tree: only what is visible ---------------------------------------------------

function rootId() {
  for (const n of state.nodes.values()) if (n.parent == null || !state.nodes.has(n.parent)) return n.id;
  return null;
}
function computeVisible() {
  const out = [], root = rootId();
  if (root == null) return out;
  const stack = [root];
  while (stack.length) {
    const id = stack.pop();
    out.push(id);
    if (state.expanded.has(id)) {
      const k = state.kids.get(id) || [];
      for (let i = k.length - 1; i >= 0; i--) stack.push(k[i]);
    }
  }
  return out;
}
function schedule() { if (!state.frame) state.frame = requestAnimationFrame(draw); }

function draw() {
  state.frame = 0;
  if (state.shapeDirty) { state.visible = computeVisible(); state.shapeDirty = false; }
  const tree = $("tree"), total = state.visible.length;
  $("spacer").style.height = `${total * ROW}px`;
  const first = Math.max(0, Math.floor(tree.scrollTop / ROW) - OVERSCAN);
  const last = Math.min(total, Math.ceil((tree.scrollTop + tree.clientHeight) / ROW) + OVERSCAN);
  $("rows").style.transform = `translateY(${first * ROW}px)`;
  let html = "";
  for (let i = first; i < last; i++) html += rowHtml(state.nodes.get(state.visible[i]));
  $("rows").innerHTML = html;
}

function rowHtml(n) {
  const kids = (state.kids.get(n.id) || []).length;
  const tog = kids ? (state.expanded.has(n.id) ? "▾" : "▸") : "";
  const badges = (n.denied ? `<span class="badge den" title="denied calls">denied ${n.denied}</span>` : "")
    + (n.events ? `<span class="badge ev" title="retries, reroutes, faults">events ${n.events}</span>` : "")
    + (kids && !state.expanded.has(n.id) ? `<span class="dim"> (${n.tasks - 1})</span>` : "");
  const time = n.seconds != null ? secs(n.seconds) : n.started_at ? secs(Date.now() / 1000 - n.started_at) + "…" : "";
  return `<div class="row${n.id === state.selected ? " sel" : ""}" data-id="${esc(n.id)}" data-status="${esc(n.status)}">
    <span class="c-name" style="padding-left:${n.depth * 16}px"><span class="tog">${tog}</span><span class="key">${esc(n.key)}</span>${esc(n.goal)}${badges}</span>
    <span class="c-status">${status(n.status)}</span><span class="c-role">${esc(n.role)}</span>
    <span class="c-spend">${bar(n.frac)}<small>${esc(spendText(n.spent, n.budget))}</small></span>
    <span class="c-time">${esc(time)}</span><span class="c-depth">${n.depth_left ?? ""}</span></div>`;
}

$("tree").addEventListener("scroll", schedule);
window.addEventListener("resize", schedule);
$("rows").addEventListener("click", (ev) => {
  const el = ev.target.closest(".row[data-id]");
  if (!el) return;
  const id = el.dataset.id;
  if (ev.target.closest(".tog") && (state.kids.get(id) || []).length) toggle(id);
  else select(id);
});
$("rows").addEventListener("dblclick", (ev) => {
  const el = ev.target.closest(".row[data-id]");
  if (el) toggle(el.dataset.id);
});
function toggle(id) {
  if (state.expanded.has(id)) state.expanded.delete(id); else state.expanded.add(id);
  state.shapeDirty = true; schedule();
}
$("expand").addEventListener("click", () => {
  const deepest = Math.max(-1, ...[...state.expanded].map((id) => state.nodes.get(id)?.depth ?? -1));
  for (const n of state.nodes.values()) if (n.depth <= deepest + 1) state.expanded.add(n.id);
  state.shapeDirty = true; schedule();
});
$("collapse").addEventListener("click", () => {
  state.expanded = new Set([...state.nodes.values()].filter((n) => n.depth < OPEN_DEPTH + 1).map((n) => n.id));
  state.shapeDirty = true; schedule();
});

function reveal(id) {
  let up = state.nodes.get(id)?.parent;
  while (up != null && state.nodes.has(up)) { state.expanded.add(up); up = state.nodes.get(up).parent; }
  state.visible = computeVisible(); state.shapeDirty = false;
  const i = state.visible.indexOf(id);
  if (i >= 0) $("tree").scrollTop = Math.max(0, i * ROW - $("tree").clientHeight / 3);
  select(id);
}

// --- the run's head: state, counts, budget, approvals ---------------------------------

function drawHead() {
  const s = state.snap;
  if (!s) return;
  const r = s.run, c = s.summary.by_status;
  const took = r.state === "running" ? secs(Date.now() / 1000 - r.created_at) : secs(r.seconds);
  const err = r.error ? `<div class="err">${esc(r.error.code)}: ${esc(r.error.message)}</div>` : "";
  $("runhead").innerHTML = `<h1>${esc(r.goal)}</h1>
    <div>${status(r.state)} <span class="dim">run ${esc(r.id)} · ${esc(r.agent)} · ${esc(took)}</span>
    ${r.state === "interrupted" ? ` <span class="dim">no process carries it: <code>remit resume ${esc(r.id)}</code></span>` : ""}</div>${err}`;
  $("counts").textContent = `${s.summary.tasks} tasks · ` + Object.entries(c).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(" · ")
    + ` · ${s.summary.denied} denied calls`;
  const b = s.budget, lim = b.budget || {}, sp = b.spent || {};
  const dims = [["calls", "calls"], ["cost_usd", "$"], ["input_tokens", "in tok"], ["output_tokens", "out tok"]];
  let html = `<span class="dim">run budget</span>`;
  for (const [d, label] of dims) {
    if (lim[d] == null && !sp[d]) continue;
    const f = lim[d] ? (sp[d] || 0) / lim[d] : null;
    const v = d === "cost_usd" ? `$${(sp[d] || 0).toFixed(4)}${lim[d] != null ? " / $" + lim[d].toFixed(2) : ""}` : `${sp[d] || 0}${lim[d] != null ? " / " + lim[d] : ""} ${label}`;
    html += `<span class="dimbar">${bar(f)} ${esc(v)}</span>`;
  }
  if (b.deadline) html += `<span class="dim">deadline ${esc(new Date(b.deadline * 1000).toLocaleTimeString())}</span>`;
  $("budget").innerHTML = html;
  drawApprovals(s.approvals.filter((a) => a.state === "waiting"));
}

function askHtml(a) {
  return `<div class="ask" data-step="${esc(a.step)}">
    <div><b>${esc(a.tool)}</b> <code>${esc(JSON.stringify(a.args))}</code> <span class="dim">task</span> <a href="#" class="goto" data-id="${esc(a.task)}">${esc(a.task)}</a></div>
    <div class="dim">${esc(a.why)}</div>
    <div class="dim">step ${esc(a.step)}${a.run_state === "interrupted" ? " · the run's process is gone: the answer is used when it resumes" : ""}</div>
    <div class="act"><input class="reason" placeholder="reason (recorded)" aria-label="reason">
      <button type="button" class="approve" data-step="${esc(a.step)}">Approve</button>
      <button type="button" class="deny" data-step="${esc(a.step)}">Deny</button></div>
    <div class="msg"></div></div>`;
}
function drawApprovals(waiting) {
  const box = $("approvals");
  const key = waiting.map((a) => a.step).join("|");
  if (box.dataset.key === key) return;  // keep what a person is typing
  box.dataset.key = key;
  box.innerHTML = waiting.length ? `<h3>${waiting.length} call${waiting.length > 1 ? "s wait" : " waits"} for a person</h3>` + waiting.map(askHtml).join("") : "";
}
async function answer(btn, approved) {
  const card = btn.closest(".ask");
  const reason = card.querySelector(".reason")?.value || "";
  card.querySelectorAll("button").forEach((b) => (b.disabled = true));
  try {
    await api(`/api/runs/${encodeURIComponent(state.runId)}/approvals`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ step: btn.dataset.step, approved, reason }),
    });
    card.querySelector(".msg").textContent = approved ? "approved: the run goes on" : "denied";
  } catch (e) {
    card.querySelector(".msg").innerHTML = `<span class="err">${esc(e.message)}</span>`;
    card.querySelectorAll("button").forEach((b) => (b.disabled = false));
  }
}
document.addEventListener("click", (ev) => {
  const t = ev.target;
  if (t.matches("button.approve")) answer(t, true);
  else if (t.matches("button.deny")) answer(t, false);
  else if (t.matches("a.goto")) { ev.preventDefault(); reveal(t.dataset.id); }
});

// --- a task's detail --------------------------------------------------------------------

function select(id) {
  state.selected = id; schedule(); refreshDetail();
}
async function refreshDetail() {
  const id = state.selected;
  if (!id) return;
  try {
    const d = await api(`/api/runs/${encodeURIComponent(state.runId)}/task?id=${encodeURIComponent(id)}`);
    if (state.selected === id) $("detail").innerHTML = detailHtml(d);
  } catch (e) { $("detail").innerHTML = `<div class="pad err">${esc(e.message)}</div>`; }
}
function pre(v) { return `<pre>${esc(typeof v === "string" ? v : JSON.stringify(v, null, 2))}</pre>`; }
function detailHtml(d) {
  const t = d.task;
  const kv = (k, v) => `<span>${esc(k)}</span><span>${v}</span>`;
  let h = `<h2 data-task="${esc(t.id)}">${esc(t.key)} · ${esc(t.goal)}</h2><div class="sect kv">`
    + kv("task", `<code>${esc(t.id)}</code>`) + kv("status", status(t.status)) + kv("role", esc(t.decision || "") + (t.forced ? " (depth cap)" : ""))
    + kv("spent", esc(spendText(t.spent, t.budget))) + kv("time", esc(secs(t.seconds))) + kv("depth left", esc(t.depth_left ?? ""))
    + kv("steps", `${t.steps} · ${t.calls} calls`) + `</div>`;
  if (t.error) h += `<h3>Error</h3><div class="sect denial">${esc(t.error.code)}: ${esc(t.error.message)}</div>`;
  if (t.denied.length) {
    h += `<h3>Denied calls</h3><div class="sect">` + t.denied.map((x) => `<div class="denial"><b>${esc(x.name)}</b> <code>${esc(JSON.stringify(x.args))}</code><div>${esc(x.code)}: <span class="reason">${esc(x.reason)}</span></div><div class="dim">${esc(x.step_id)}</div></div>`).join("") + `</div>`;
  }
  if (t.events.length) h += `<h3>Retries, reroutes, escalations, faults</h3><div class="sect">` + t.events.map((e) => `<div><b>${esc(e.kind)}</b> ${esc(e.text)}</div>`).join("") + `</div>`;
  if (d.approvals.length) {
    h += `<h3>Approvals</h3><div class="sect">` + d.approvals.map((a) => `<div class="call"><b>${esc(a.tool)}</b> ${status(a.state)} ${a.answer ? `<span class="dim">by ${esc(a.answer.by)}${a.answer.reason ? ": " + esc(a.answer.reason) : ""}</span>` : ""}<div class="dim">${esc(a.why)}</div></div>`).join("") + `</div>`;
  }
  h += `<h3>Calls</h3><div class="sect">` + (d.calls.length ? d.calls.map((c) => `<div class="call ${esc(c.status)}"><b>${esc(c.kind)} ${esc(c.name)}</b> ${esc(c.status)} <span class="dim">${esc(c.step)} ${esc(secs(c.seconds))}</span>
      ${c.args != null ? "<div class=dim>arguments</div>" + pre(c.args) : ""}${c.result != null ? "<div class=dim>result</div>" + pre(c.result) : ""}${c.error ? `<div class="err">${esc(c.error.code)}: ${esc(c.error.message)}</div>` : ""}</div>`).join("") : `<span class="dim">none</span>`) + `</div>`;
  h += `<h3>Remit</h3><div class="sect">${pre(d.remit)}</div>`;
  h += `<h3>Delegation chain</h3><div class="sect"><ol class="chain"><li>principal → run <code>${esc(d.principal.run)}</code></li>`
    + d.chain.map((c) => `<li><a href="#" class="goto" data-id="${esc(c.id)}">${esc(c.key)}</a> ${esc(c.goal)} <span class="dim">${esc(c.remit ? Object.keys(c.remit.tools || {}).join(", ") : "")}${c.remit && c.remit.depth != null ? " · depth " + c.remit.depth : ""}</span></li>`).join("") + `</ol></div>`;
  return h;
}

// --- search ---------------------------------------------------------------------------

let searchTimer = 0;
$("search").addEventListener("input", () => { clearTimeout(searchTimer); searchTimer = setTimeout(search, 200); });
$("search").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { clearTimeout(searchTimer); search(); } if (ev.key === "Escape") $("results").hidden = true; });
async function search() {
  const q = $("search").value.trim(), box = $("results");
  if (!q || !state.runId) { box.hidden = true; return; }
  try {
    const r = await api(`/api/runs/${encodeURIComponent(state.runId)}/search?q=${encodeURIComponent(q)}`);
    const items = r.steps.map((s) => `<li data-id="${esc(s.task_id)}" data-step="${esc(s.step_id)}">${status(s.status)} <b>${esc(s.kind)} ${esc(s.name)}</b> <code>${esc(s.step_id)}</code></li>`)
      .concat(r.tasks.map((id) => { const n = state.nodes.get(id); return `<li data-id="${esc(id)}">task <b>${esc(n?.key)}</b> ${esc(n?.goal)} <code>${esc(id)}</code></li>`; }));
    box.innerHTML = items.join("") || `<li class="dim">nothing matches</li>`;
    box.hidden = false;
  } catch (e) { box.innerHTML = `<li class="err">${esc(e.message)}</li>`; box.hidden = false; }
}
$("results").addEventListener("click", (ev) => {
  const li = ev.target.closest("li[data-id]");
  if (!li) return;
  $("results").hidden = true;
  reveal(li.dataset.id);
});

// --- start ------------------------------------------------------------------------------

function route() {
  const m = location.hash.match(/^#\/run\/(.+)$/);
  const id = m ? decodeURIComponent(m[1]) : null;
  if (id !== state.runId) openRun(id);
}
window.addEventListener("hashchange", route);
loadRuns();
route();
setInterval(loadRuns, 3000);
setInterval(() => { if (state.snap && state.snap.run.state === "running") { drawHead(); schedule(); } }, 1000);

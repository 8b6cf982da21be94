// Moldau console: renders each page from the JSON API and refreshes it every 2 s.
// Every value from the cluster goes into the page as a text node (el() below), never as
// markup, so a message or a name holding "<script>" shows as those characters.
"use strict";

const REFRESH_MS = 2000;
const page = document.body.dataset.page;
const params = new URLSearchParams(location.search);
const main = document.getElementById("main");
const state = { format: "text", follow: false, positions: null, messages: [], busy: false };

// --- small helpers ----------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function replace(id, node) {
  const old = document.getElementById(id);
  node.id = id;
  if (old) old.replaceWith(node); else main.append(node);
}

function link(path, name, text) {
  return el("a", { href: path + "?name=" + encodeURIComponent(name) }, text === undefined ? name : text);
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function fmtNum(n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"); }
function fmtTime(ms) { return ms >= 0 ? new Date(ms).toISOString().replace("T", " ").replace("Z", "") : "—"; }

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: { "Content-Type": "application/json", "X-Moldau-Console": "1" },
  };
  let response;
  try {
    response = await fetch("/api" + path, options);
  } catch (error) {
    throw new Error("the console server does not answer");
  }
  const data = await response.json().catch(() => ({ error: "HTTP " + response.status }));
  if (!response.ok) {
    const error = new Error(data.error || "HTTP " + response.status);
    error.status = response.status;
    throw error;
  }
  return data;
}

function notice(text, isError) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.className = isError ? "notice error" : "notice";
  box.hidden = !text;
}

function confirmByName(text, name) {
  return new Promise((resolve) => {
    const modal = document.getElementById("confirm");
    const input = document.getElementById("confirm-input");
    const ok = document.getElementById("confirm-ok");
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-name").textContent = name;
    input.value = "";
    ok.disabled = true;
    modal.hidden = false;
    input.focus();
    const finish = (answer) => { modal.hidden = true; input.oninput = ok.onclick = cancel.onclick = null; resolve(answer); };
    const cancel = document.getElementById("confirm-cancel");
    input.oninput = () => { ok.disabled = input.value !== name; };
    ok.onclick = () => finish(input.value === name ? input.value : null);
    cancel.onclick = () => finish(null);
  });
}

// A line chart as SVG: series is [{key, label, color}], points [{time, key: value}].
function chart(id, title, points, series) {
  const width = 800, height = 160, pad = 28;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const present = series.filter((s) => points.some((p) => p[s.key] !== undefined));
  const max = Math.max(1, ...points.flatMap((p) => present.map((s) => p[s.key] || 0)));
  const t0 = points.length ? points[0].time : 0, t1 = points.length ? points[points.length - 1].time : 1;
  const x = (t) => pad + (width - 2 * pad) * (t1 === t0 ? 1 : (t - t0) / (t1 - t0));
  const y = (v) => height - pad + 8 - (height - pad) * (v / max);
  for (const s of present) {
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.filter((p) => p[s.key] !== undefined).map((p) => `${x(p.time)},${y(p[s.key])}`).join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", s.color);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(line);
  }
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", "4"); label.setAttribute("y", "12"); label.setAttribute("font-size", "11");
  label.textContent = "max " + fmtNum(Math.round(max));
  svg.append(label);
  const last = points.length ? points[points.length - 1] : {};
  const legend = el("div", { class: "legend" }, present.map((s) =>
    el("span", { style: `color:${s.color}` }, `${s.label}: ${fmtNum(last[s.key])}`)));
  const missing = series.filter((s) => !present.includes(s)).map((s) => s.label);
  replace(id, el("div", { class: "chart" }, el("h2", {}, title), svg, legend,
    missing.length ? el("div", { class: "muted" }, "Not offered by this cluster: " + missing.join(", ") +
      " (a Moldau node with metrics.port offers them).") : null,
    points.length < 2 ? el("div", { class: "muted" }, "Collecting samples…") : null));
}

// --- pages ------------------------------------------------------------------------------
const pages = {
  async overview() {
    const o = await api("/overview");
    replace("title", el("h1", {}, "Cluster " + (o.cluster_id || "")));
    replace("cards", el("div", { class: "cards" },
      card("Nodes alive", `${o.nodes.filter((n) => n.alive).length} / ${o.nodes.length}`),
      card("Active controller", o.controller === null ? "—" : o.controller),
      card("Topics", o.topics), card("Partitions", o.partitions),
      card("Under-replicated", o.under_replicated, o.under_replicated ? "bad" : "ok"),
      card("Offline", o.offline, o.offline ? "bad" : "ok")));
    replace("nodes", el("table", { id: "nodes" },
      el("tr", {}, el("th", {}, "Node"), el("th", {}, "Address"), el("th", {}, "Alive"), el("th", {}, "Role")),
      o.nodes.map((n) => el("tr", { dataset: { node: n.id } }, el("td", {}, n.id), el("td", {}, `${n.host}:${n.port}`),
        el("td", { class: n.alive ? "ok alive" : "bad alive" }, n.alive ? "alive" : "not answering"),
        el("td", {}, n.controller ? "active controller" : "")))));
    chart("throughput", "Throughput (per second)", o.throughput, [
      { key: "records_in", label: "records in", color: "#2f6fdf" },
      { key: "records_out", label: "records out", color: "#1e8449" },
      { key: "bytes_in", label: "bytes in", color: "#b9770e" },
      { key: "bytes_out", label: "bytes out", color: "#8e44ad" }]);
  },

  async topics(first) {
    if (first) {
      main.append(el("h1", {}, "Topics"));
      const form = el("form", { class: "inline", id: "create-topic" },
        el("label", {}, "New topic", el("input", { name: "name", required: true, placeholder: "name" })),
        el("label", {}, "Partitions", el("input", { name: "partitions", type: "number", min: 1, value: 1 })),
        el("label", {}, "Replication factor", el("input", { name: "replication_factor", type: "number", min: -1, value: -1, title: "-1: the cluster default" })),
        el("label", {}, "Configs (key=value, one a line)", el("textarea", { name: "configs" })),
        el("button", { type: "submit" }, "Create topic"));
      form.onsubmit = async (event) => {
        event.preventDefault();
        const data = new FormData(form);
        const configs = {};
        for (const line of String(data.get("configs")).split("\n")) {
          const at = line.indexOf("=");
          if (at > 0) configs[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        }
        try {
          await api("/topics", { name: data.get("name"), partitions: data.get("partitions"), replication_factor: data.get("replication_factor"), configs });
          notice(`Created topic ${data.get("name")}.`);
          form.reset();
          await pages.topics(false);
        } catch (error) { notice(error.message, true); }
      };
      main.append(form, el("div", { class: "controls" }, el("label", {}, "Search",
        el("input", { id: "topic-search", placeholder: "filter by name", oninput: () => pages.topics(false) }))));
    }
    const topics = await api("/topics");
    const filter = document.getElementById("topic-search").value.toLowerCase();
    const shown = topics.filter((t) => t.name.toLowerCase().includes(filter));
    replace("topics-table", el("table", {},
      el("tr", {}, ["Name", "Partitions", "Replication", "Size on disk", "Records (estimate)", "Health", ""].map((h) => el("th", {}, h))),
      shown.map((t) => el("tr", { dataset: { topic: t.name } },
        el("td", {}, link("/topic", t.name)), el("td", { class: "num" }, t.partitions),
        el("td", { class: "num" }, t.replication_factor), el("td", { class: "num" }, fmtBytes(t.size_bytes)),
        el("td", { class: "num" }, fmtNum(t.records)),
        el("td", {}, t.offline ? el("span", { class: "tag bad" }, `${t.offline} offline`) : null,
          t.under_replicated ? el("span", { class: "tag bad under-replicated" }, `${t.under_replicated} under-replicated`) : null),
        el("td", {}, el("button", { type: "button", class: "danger delete-topic", onclick: () => deleteTopic(t.name) }, "Delete"))))));
  },

  async topic(first) {
    const name = params.get("name");
    if (first) {
      main.append(el("h1", {}, "Topic ", el("span", { id: "topic-name" }, name)),
        el("p", {}, el("a", { href: "/messages?topic=" + encodeURIComponent(name) }, "Browse messages"), " · ",
          el("button", { type: "button", class: "danger", onclick: () => deleteTopic(name) }, "Delete topic")));
    }
    const t = await api("/topic?name=" + encodeURIComponent(name));
    replace("partitions-table", el("table", {},
      el("tr", {}, ["Partition", "Leader", "Replicas", "ISR", "Log start", "Log end", "Size", "Records/s in"].map((h) => el("th", {}, h))),
      t.partitions.map((p) => el("tr", { dataset: { partition: p.partition } },
        el("td", {}, p.partition), el("td", { class: p.leader < 0 ? "leader bad" : "leader" }, p.leader < 0 ? "none" : p.leader),
        el("td", { class: "replicas" }, p.replicas.join(", ")),
        el("td", { class: p.under_replicated ? "isr bad" : "isr" }, p.isr.join(", ")),
        el("td", { class: "num" }, fmtNum(p.log_start_offset)), el("td", { class: "num end-offset" }, fmtNum(p.log_end_offset)),
        el("td", { class: "num" }, fmtBytes(p.size_bytes)),
        el("td", { class: "num" }, p.records_per_s === null || p.records_per_s === undefined ? "—" : p.records_per_s.toFixed(1))))));
    replace("configs-title", el("h2", {}, "Configs"));
    replace("configs-table", el("table", {},
      el("tr", {}, el("th", {}, "Name"), el("th", {}, "Value"), el("th", {}, "Source")),
      t.configs.map((c) => el("tr", { dataset: { config: c.name } }, el("td", {}, c.name),
        el("td", {}, c.sensitive ? "(sensitive)" : c.value === null ? "null" : c.value),
        el("td", { class: c.source === "default" ? "muted" : "" }, c.source)))));
  },

  async messages(first) {
    const topic = params.get("topic");
    if (first) messagesControls(topic);
    if (first || state.follow) await loadMessages(topic, state.follow && state.positions ? "positions" : null);
  },

  async groups() {
    const groups = await api("/groups");
    replace("title", el("h1", {}, "Consumer groups"));
    replace("groups-table", el("table", {},
      el("tr", {}, ["Group", "State", "Protocol", "Members"].map((h) => el("th", {}, h))),
      groups.map((g) => el("tr", { dataset: { group: g.group } }, el("td", {}, link("/group", g.group)),
        el("td", {}, g.state), el("td", {}, g.protocol || "—"), el("td", { class: "num" }, g.members ?? "—")))));
  },

  async group(first) {
    const name = params.get("name");
    if (first) {
      main.append(el("h1", {}, "Group ", el("span", { id: "group-name" }, name)));
      main.append(resetForm(name));
    }
    const g = await api("/group?name=" + encodeURIComponent(name));
    replace("group-cards", el("div", { class: "cards" }, card("State", g.state), card("Protocol", g.protocol || "—"),
      card("Members", g.members.length), card("Total lag", el("span", { id: "total-lag" }, fmtNum(g.total_lag)))));
    chart("lag-chart", "Total lag over time", g.lag_history, [{ key: "lag", label: "lag", color: "#c0392b" }]);
    replace("members-title", el("h2", {}, "Members"));
    replace("members-table", el("table", {},
      el("tr", {}, ["Member", "Client id", "Host", "Assignment"].map((h) => el("th", {}, h))),
      g.members.map((m) => el("tr", {}, el("td", {}, m.member_id), el("td", {}, m.client_id), el("td", {}, m.host),
        el("td", {}, m.assignment.map(([t, p]) => `${t}-${p}`).join(", "))))));
    replace("offsets-title", el("h2", {}, "Offsets and lag"));
    replace("offsets-table", el("table", {},
      el("tr", {}, ["Topic", "Partition", "Committed", "Log end", "Lag", "Member"].map((h) => el("th", {}, h))),
      g.partitions.map((p) => el("tr", { dataset: { topic: p.topic, partition: p.partition } },
        el("td", {}, p.topic), el("td", {}, p.partition), el("td", { class: "num committed" }, fmtNum(p.committed_offset)),
        el("td", { class: "num" }, fmtNum(p.log_end_offset)), el("td", { class: "num lag" }, fmtNum(p.lag)),
        el("td", {}, p.client_id || "")))));
  },

  async connect() {
    const c = await api("/connect");
    replace("title", el("h1", {}, "Connect ", el("span", { class: "muted" }, c.url)));
    replace("connectors-table", el("table", {},
      el("tr", {}, ["Connector", "Type", "State", "Tasks", ""].map((h) => el("th", {}, h))),
      c.connectors.map((k) => el("tr", { dataset: { connector: k.name } },
        el("td", {}, k.name), el("td", {}, k.status?.type || k.info?.type || ""),
        el("td", { class: "connector-state" }, k.status?.connector?.state || ""),
        el("td", {}, (k.status?.tasks || []).map((t) => el("span", { class: t.state === "FAILED" ? "tag bad" : "tag" }, `${t.id}: ${t.state}`))),
        el("td", {}, ["pause", "resume", "restart"].map((action) =>
          el("button", { type: "button", class: "plain", dataset: { action }, onclick: () => connectAction(k.name, action) }, action)))))));
  },
};

function card(label, value, cls) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value " + (cls || "") }, value));
}

async function deleteTopic(name) {
  const confirmed = await confirmByName(`Delete topic ${name} and all its records?`, name);
  if (!confirmed) return;
  try {
    await api("/topic/delete", { name, confirm: confirmed });
    notice(`Deleted topic ${name}.`);
    if (page === "topic") location.href = "/topics"; else await pages.topics(false);
  } catch (error) { notice(error.message, true); }
}

async function connectAction(name, action) {
  try { await api("/connect/action", { name, action }); notice(`${action}: ${name}`); await pages.connect(); }
  catch (error) { notice(error.message, true); }
}

function resetForm(name) {
  const form = el("form", { class: "inline", id: "reset-form" },
    el("label", {}, "Reset offsets to", el("select", { name: "to" },
      ["earliest", "latest", "offset", "datetime"].map((v) => el("option", { value: v }, v)))),
    el("label", {}, "Offset or time (ISO 8601)", el("input", { name: "value", placeholder: "e.g. 42 or 2026-01-01T00:00:00Z" })),
    el("label", {}, "Topics (comma separated; empty: all)", el("input", { name: "topics" })),
    el("button", { type: "submit", class: "danger" }, "Reset offsets…"));
  form.onsubmit = async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const confirmed = await confirmByName(`Reset the committed offsets of group ${name} to ${data.get("to")}? The group must be empty.`, name);
    if (!confirmed) return;
    try {
      const result = await api("/group/reset", { name, confirm: confirmed, to: data.get("to"), value: data.get("value"),
        topics: String(data.get("topics")).split(",").map((t) => t.trim()).filter(Boolean) });
      notice(`Reset ${result.offsets.length} partition(s) of ${name}.`);
      await pages.group(false);
    } catch (error) { notice(error.message, true); }
  };
  return form;
}

// --- the message browser ----------------------------------------------------------------
function messagesControls(topic) {
  main.append(el("h1", {}, "Messages of ", link("/topic", topic)));
  const controls = el("form", { class: "controls", id: "browse-form" },
    el("label", {}, "Partitions (empty: all)", el("input", { name: "partitions", placeholder: "0,1" })),
    el("label", {}, "Start", el("select", { name: "mode" },
      [["end", "the end (latest)"], ["beginning", "the beginning"], ["offset", "an offset"], ["timestamp", "a time"]]
        .map(([v, t]) => el("option", { value: v }, t)))),
    el("label", {}, "Offset", el("input", { name: "offset", type: "number", min: 0 })),
    el("label", {}, "Time (UTC)", el("input", { name: "time", type: "datetime-local", step: 1 })),
    el("label", {}, "Limit", el("input", { name: "limit", type: "number", min: 1, max: 500, value: 50 })),
    el("label", {}, "Show as", el("select", { name: "format", onchange: (e) => { state.format = e.target.value; renderMessages(); } },
      ["text", "json", "hex"].map((v) => el("option", { value: v }, v)))),
    el("label", {}, "Follow live", el("input", { name: "follow", type: "checkbox", onchange: (e) => { state.follow = e.target.checked; } })),
    el("button", { type: "submit" }, "Load"));
  controls.onsubmit = async (event) => { event.preventDefault(); state.positions = null; await loadMessages(topic, null); };
  main.append(controls);
  const produce = el("form", { class: "inline", id: "produce-form" },
    el("label", {}, "Partition (empty: by key)", el("input", { name: "partition", type: "number", min: 0 })),
    el("label", {}, "Key", el("input", { name: "key" })),
    el("label", {}, "Value", el("textarea", { name: "value" })),
    el("label", {}, "Headers (key=value, one a line)", el("textarea", { name: "headers" })),
    el("button", { type: "submit" }, "Produce"));
  produce.onsubmit = async (event) => {
    event.preventDefault();
    const data = new FormData(produce);
    const headers = String(data.get("headers")).split("\n").filter((l) => l.includes("="))
      .map((l) => ({ key: l.slice(0, l.indexOf("=")).trim(), value: l.slice(l.indexOf("=") + 1) }));
    try {
      const r = await api("/produce", { topic, partition: data.get("partition"), key: data.get("key") || null, value: data.get("value"), headers });
      notice(`Produced to partition ${r.partition} at offset ${r.offset}.`);
      const last = document.getElementById("last-produced");
      if (last) last.textContent = `${r.partition}:${r.offset}`;
    } catch (error) { notice(error.message, true); }
  };
  main.append(el("h2", {}, "Produce a message"), produce, el("p", { class: "muted" }, "Last produced: ", el("span", { id: "last-produced" }, "—")));
}

async function loadMessages(topic, forced) {
  const form = document.getElementById("browse-form");
  const data = new FormData(form);
  let mode = forced || data.get("mode"), value = "";
  if (mode === "offset") value = data.get("offset");
  if (mode === "timestamp") value = data.get("time") ? String(Date.parse(data.get("time") + "Z")) : "";
  const query = new URLSearchParams({ topic, mode, value, limit: data.get("limit") || "50", partitions: data.get("partitions") || "" });
  if (mode === "positions") query.set("positions", Object.entries(state.positions).map(([p, o]) => `${p}:${o}`).join(","));
  const result = await api("/messages?" + query.toString());
  state.messages = mode === "positions" ? state.messages.concat(result.messages).slice(-500) : result.messages;
  state.positions = result.positions;
  renderMessages();
}

function renderData(data, where) {
  if (data === null) return el("span", { class: "muted" }, "null");
  let shown;
  if (state.format === "hex") shown = data.hex + (data.size > (data.hex.length + 1) / 3 ? " …" : "");
  else if (state.format === "json" && data.json !== null) shown = data.json;
  else shown = data.text + (data.truncated ? " …" : "");
  return el("div", {}, el("pre", { class: "data" }, shown),
    el("span", { class: "muted" }, fmtBytes(data.size), data.utf8 ? "" : " · not valid UTF-8 (shown with �)",
      state.format === "json" && data.json === null ? " · not JSON" : ""),
    data.truncated ? el("button", { type: "button", class: "plain show-all", onclick: where }, "show all") : null);
}

function renderMessages() {
  const topic = params.get("topic");
  const rows = state.messages.map((m, i) => el("tr", { dataset: { partition: m.partition, offset: m.offset } },
    el("td", {}, m.partition), el("td", { class: "num offset" }, m.offset),
    el("td", {}, fmtTime(m.timestamp), el("div", { class: "muted" }, m.timestamp_type)),
    el("td", { class: "key" }, renderData(m.key, () => showAll(topic, i))),
    el("td", { class: "value" }, renderData(m.value, () => showAll(topic, i))),
    el("td", { class: "headers" }, m.headers.map((h) => el("div", {}, el("b", {}, h.key), ": ", renderData(h.value, () => showAll(topic, i)))))));
  replace("messages-table", el("table", {},
    el("tr", {}, ["Partition", "Offset", "Timestamp", "Key", "Value", "Headers"].map((h) => el("th", {}, h))), rows));
  replace("messages-count", el("p", { class: "muted" }, `${state.messages.length} message(s)`));
}

async function showAll(topic, index) {
  const m = state.messages[index];
  const query = new URLSearchParams({ topic, mode: "offset", value: m.offset, limit: 1, partitions: m.partition, cap: 8 * 1024 * 1024 });
  try {
    const result = await api("/messages?" + query.toString());
    if (result.messages.length) { state.messages[index] = result.messages[0]; renderMessages(); }
  } catch (error) { notice(error.message, true); }
}

// --- the loop: render, then refresh every 2 s; a banner while the cluster is unreachable -----
async function refresh(first) {
  if (state.busy) return;
  state.busy = true;
  const banner = document.getElementById("banner");
  try {
    const status = await api("/status");
    if (status.reachable === false) {
      banner.textContent = `Cannot reach the cluster at ${status.bootstrap_servers}: ${status.error}. Retrying…`;
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
    if (first) main.textContent = "";
    await pages[page](first);
  } catch (error) {
    if (error.status === 503 || error.message === "the console server does not answer") {
      banner.textContent = "Cannot reach the cluster: " + error.message + ". Retrying…";
      banner.hidden = false;
    } else if (first) {
      main.textContent = "";
      main.append(el("p", { class: "bad", id: "page-error" }, error.message));
    } else {
      notice(error.message, true);
    }
    if (first) { state.busy = false; setTimeout(() => refresh(true), REFRESH_MS); return; }
  } finally {
    state.busy = false;
  }
  if (first) setInterval(() => refresh(false), REFRESH_MS);
}

document.querySelectorAll("[data-nav]").forEach((a) => a.classList.toggle("active", a.dataset.nav === page ||
  (a.dataset.nav === "topics" && (page === "topic" || page === "messages")) || (a.dataset.nav === "groups" && page === "group")));
refresh(true);

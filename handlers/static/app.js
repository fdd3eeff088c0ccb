// CommonWatt's page: log in, pick a community and a month, see its energy balance and its
// dashboards. Charts are small SVG drawings made here (no library, nothing from elsewhere).
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const WINDOWS = { PT1H: 3600e3, PT6H: 6 * 3600e3, P1D: 864e5, P7D: 7 * 864e5,
                  P30D: 30 * 864e5, P365D: 365 * 864e5 };
const state = { token: sessionStorage.getItem("commonwatt.token"), me: null, sensors: [] };
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(`/api${path}`, { ...options, headers });
  if (response.status === 204) return null;
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || body.title || `HTTP ${response.status}`);
  return body;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

function svgElement(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

const kwh = (wh) => (wh / 1000).toLocaleString("en", { maximumFractionDigits: 1 });
const percent = (rate) => (rate === null || rate === undefined ? "–"
  : `${(rate * 100).toLocaleString("en", { maximumFractionDigits: 1 })} %`);

function monthRange() {
  const [year, month] = $("month").value.split("-").map(Number);
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const pad = (n) => String(n).padStart(2, "0");
  return { from: `${year}-${pad(month)}-01`, to: `${year}-${pad(month)}-${pad(last)}`,
           end: Date.UTC(year, month, 1) };
}

// ---- charts -------------------------------------------------------------------------------

function stackedBars(container, periods, label) {
  if (!periods.length) {
    container.replaceChildren(element("p", {}, "No periods to draw (none, or withheld)."));
    container.dataset.drawn = "0";
    return;
  }
  const width = Math.max(200, Math.round(container.clientWidth || 600));
  const height = 200;
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                                  "aria-label": label });
  const keys = [["withdrawn_wh", "withdrawn"], ["fed_in_wh", "fed-in"], ["shared_wh", "shared"]];
  const top = Math.max(1, ...periods.map((p) => keys.reduce((sum, [key]) => sum + p[key], 0)));
  const step = periods.length ? (width - 40) / periods.length : 0;
  periods.forEach((period, index) => {
    let base = height - 20;
    for (const [key, cls] of keys) {
      const size = (period[key] / top) * (height - 30);
      const bar = svgElement("rect", { x: 40 + index * step + 1, y: base - size,
                                       width: Math.max(1, step - 2), height: size, class: cls });
      const title = svgElement("title");
      title.textContent = `${period.start.slice(0, 10)} ${cls}: ${kwh(period[key])} kWh`;
      bar.append(title);
      svg.append(bar);
      base -= size;
    }
  });
  const axis = svgElement("text", { x: 0, y: 12, "font-size": 11 });
  axis.textContent = `${kwh(top)} kWh`;
  svg.append(axis);
  const legend = element("p", { class: "legend" });
  for (const [, cls] of keys) legend.append(element("span", { class: cls }, `■ ${cls.replace("-", " ")}`));
  container.replaceChildren(svg, legend);
  container.dataset.drawn = String(periods.length);
}

function lineChart(container, result, from, to) {
  const width = Math.max(200, Math.round(container.clientWidth || 600));
  const height = 180;
  const svg = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
                                  "aria-label": `${result.channel} from ${from.toISOString()} to ${to.toISOString()}` });
  const values = result.series.flatMap((series) => series.value);
  const low = Math.min(0, ...values);
  const high = Math.max(low + 1, ...values);
  const x = (ts) => ((Date.parse(ts) - from) / (to - from)) * width;
  const y = (value) => height - 10 - ((value - low) / (high - low)) * (height - 20);
  const colours = ["#1f77b4", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50"];
  result.series.forEach((series, index) => {
    if (!series.ts.length) return;
    const points = series.ts.map((ts, i) => `${x(ts).toFixed(1)},${y(series.value[i]).toFixed(1)}`);
    svg.append(svgElement("polyline", { points: points.join(" "), class: "line",
                                        stroke: colours[index % colours.length] }));
  });
  const scale = svgElement("text", { x: 2, y: 12, "font-size": 11 });
  scale.textContent = `${high.toLocaleString("en")} max`;
  svg.append(scale);
  container.replaceChildren(svg);
}

// ---- widgets -------------------------------------------------------------------------------

function windowOf(widget) {
  const end = Math.min(monthRange().end, Date.now());
  return { from: new Date(end - WINDOWS[widget.window]), to: new Date(end) };
}

async function drawLine(figure, widget, from, to) {
  const chart = figure.querySelector(".chart");
  const maxPoints = Math.max(10, Math.min(5000, Math.round(chart.clientWidth || 600)));
  const query = new URLSearchParams({ channel: widget.channel, from: from.toISOString(),
                                      to: to.toISOString(), max_points: String(maxPoints) });
  for (const sensor of widget.sensors) query.append("sensor_id", sensor);
  const result = await api(`/telemetry/series?${query}`);
  Object.assign(figure.dataset, { from: from.toISOString(), to: to.toISOString(),
                                  maxPoints: String(maxPoints) });
  lineChart(chart, result, from, to);
  figure.dataset.drawn = String(result.series.reduce((n, s) => n + s.ts.length, 0));
}

function zoomable(figure, widget) {
  const buttons = element("div", { class: "toolbar" });
  const zoom = (factor) => {
    const from = Date.parse(figure.dataset.from);
    const to = Date.parse(figure.dataset.to);
    const middle = (from + to) / 2;
    const half = Math.max(60e3, ((to - from) * factor) / 2);
    drawLine(figure, widget, new Date(middle - half), new Date(middle + half)).catch(showError);
  };
  const zoomIn = element("button", { type: "button" }, "Zoom in");
  const zoomOut = element("button", { type: "button" }, "Zoom out");
  zoomIn.addEventListener("click", () => zoom(0.5));
  zoomOut.addEventListener("click", () => zoom(2));
  // The wheel zooms only a chart that has the focus (click it or Tab to it), so scrolling
  // the page over a chart still scrolls; with the focus, + and - zoom too.
  const chart = figure.querySelector(".chart");
  chart.tabIndex = 0;
  chart.setAttribute("aria-label", "Chart: + zooms in, - zooms out");
  chart.addEventListener("wheel", (event) => {
    if (document.activeElement !== chart) return;
    event.preventDefault();
    zoom(event.deltaY < 0 ? 0.5 : 2);
  }, { passive: false });
  chart.addEventListener("click", () => chart.focus());
  chart.addEventListener("keydown", (event) => {
    if (event.key === "+" || event.key === "=") zoom(0.5);
    else if (event.key === "-") zoom(2);
  });
  buttons.append(zoomIn, zoomOut);
  figure.append(buttons);
}

async function drawWidget(widget) {
  const figure = element("figure", { class: "widget", "data-kind": widget.kind,
                                     "aria-labelledby": `widget-${widget.id}` });
  figure.style.gridColumn = `${widget.x + 1} / span ${widget.w}`;
  figure.style.gridRow = `${widget.y + 1} / span ${widget.h}`;
  const title = widget.title || (widget.kind === "balance" ? `Energy balance of ${widget.community}`
    : `${widget.channel} of ${widget.sensors.join(", ")}`);
  figure.append(element("h3", { id: `widget-${widget.id}` }, title));
  const chart = element("div", { class: "chart" });
  figure.append(chart);
  $("grid").append(figure);
  const { from, to } = windowOf(widget);
  if (widget.kind === "line") {
    zoomable(figure, widget);
    await drawLine(figure, widget, from, to);
  } else if (widget.kind === "balance") {
    const day = (date) => date.toISOString().slice(0, 10);
    const query = new URLSearchParams({ from: day(from), to: day(new Date(to - 1)), granularity: "day" });
    const balance = await api(`/telemetry/communities/${encodeURIComponent(widget.community)}/energy-balance?${query}`);
    stackedBars(chart, balance.periods, title);
  } else {
    const query = new URLSearchParams({ sensor_id: widget.sensors[0], channel: widget.channel });
    const latest = (await api(`/telemetry/latest?${query}`)).items[0];
    const value = latest ? latest.value : null;
    chart.replaceChildren(element("p", { class: "value" }, value === null ? "no reading" : value.toLocaleString("en")));
    if (widget.kind === "gauge" && value !== null) {
      const meter = element("meter", { min: widget.min, max: widget.max, value, "aria-label": title });
      chart.append(meter);
    }
  }
}

async function showDashboard() {
  $("grid").replaceChildren();
  const id = $("dashboard").value;
  if (!id) return;
  const dashboard = await api(`/dashboards/${id}`);
  await Promise.all(dashboard.widgets.map(drawWidget));
}

async function loadDashboards(selected) {
  const page = await api("/dashboards?limit=500");
  const select = $("dashboard");
  select.replaceChildren(...page.items.map((d) => element("option", { value: d.id },
    `${d.name}${d.community ? ` (shared with ${d.community})` : ""}`)));
  if (selected) select.value = String(selected);
  await showDashboard();
}

// ---- balance ------------------------------------------------------------------------------

async function loadBalance() {
  const community = $("community").value;
  const { from, to } = monthRange();
  const query = new URLSearchParams({ from, to, granularity: "day" });
  const balance = await api(`/telemetry/communities/${encodeURIComponent(community)}/energy-balance?${query}`);
  const figures = $("balance-figures");
  figures.replaceChildren();
  const totals = balance.totals;
  const shown = totals ? [["Shared energy", `${kwh(totals.shared_wh)} kWh`],
                          ["Self-consumption", percent(totals.self_consumption_rate)],
                          ["Self-sufficiency", percent(totals.self_sufficiency_rate)]]
    : [["Community figures", "withheld (too few members behind them)"]];
  for (const [name, value] of shown) figures.append(element("dt", {}, name), element("dd", {}, value));
  stackedBars($("balance-chart"), balance.periods, `Energy balance of ${community}, ${from} to ${to}`);
  $("balance-members").querySelector("tbody").replaceChildren(...balance.members.map((m) => {
    const row = element("tr");
    row.append(element("th", { scope: "row" }, m.member_key), element("td", {}, m.area),
      ...[m.withdrawn_wh, m.fed_in_wh, m.shared_as_consumer_wh, m.shared_as_producer_wh]
        .map((wh) => element("td", {}, kwh(wh))));
    return row;
  }));
}

async function loadSensors() {
  const community = $("community").value;
  const found = await api(`/telemetry/communities/${encodeURIComponent(community)}/sensors`);
  state.sensors = found.sensors;
  $("new-sensor").replaceChildren(...found.sensors.map((s) => element("option", { value: s.sensor_id },
    `${s.sensor_id} (${s.member_key})`)));
  fillChannels();
}

function fillChannels() {
  const sensor = state.sensors.find((s) => s.sensor_id === $("new-sensor").value);
  $("new-channel").replaceChildren(...(sensor ? sensor.channels : []).map((c) =>
    element("option", { value: c.channel }, c.channel)));
}

async function loadCommunity() {
  await Promise.all([loadBalance(), loadSensors()]);
  await loadDashboards();
  document.body.dataset.ready = "true";
}

// ---- login and start ----------------------------------------------------------------------

async function start() {
  state.me = await api("/auth/me");
  $("who").textContent = `Logged in as ${state.me.email}`;
  let communities;
  if (state.me.role === "admin" || state.me.role === "overseer") {
    communities = (await api("/admin/communities?limit=500")).items.map((c) => c.key);
  } else {
    communities = state.me.memberships.filter((m) => m.status === "active").map((m) => m.community_key);
  }
  $("community").replaceChildren(...communities.map((key) => element("option", { value: key }, key)));
  if (!$("month").value) {
    const now = new Date();
    $("month").value = `${now.getUTCFullYear()}-${String(now.getUTCMonth() + 1).padStart(2, "0")}`;
  }
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  if (communities.length) await loadCommunity();
}

function showError(error) {
  $("new-error").textContent = String(error.message || error);
}

$("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const answer = await api("/auth/login", { method: "POST",
      json: { email: $("email").value, password: $("password").value } });
    state.token = answer.access_token;
    sessionStorage.setItem("commonwatt.token", state.token);
    await start();
  } catch (error) {
    $("login-error").textContent = `Login failed: ${error.message}`;
  }
});

$("logout").addEventListener("click", () => {
  sessionStorage.removeItem("commonwatt.token");
  location.reload();
});

for (const [id, load] of [["community", loadCommunity], ["month", loadCommunity],
                          ["dashboard", showDashboard]]) {
  $(id).addEventListener("change", () => load().catch(showError));
}
$("new-sensor").addEventListener("change", fillChannels);

$("new-dashboard").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("new-error").textContent = "";
  const community = $("community").value;
  try {
    const created = await api("/dashboards", { method: "POST", json: {
      name: $("new-name").value, community: $("new-shared").checked ? community : null,
      widgets: [
        { kind: "line", x: 0, y: 0, w: 8, h: 4, window: "P30D", sensors: [$("new-sensor").value],
          channel: $("new-channel").value },
        { kind: "balance", x: 8, y: 0, w: 4, h: 4, window: "P30D", community },
      ] } });
    await loadDashboards(created.id);
  } catch (error) {
    showError(error);
  }
});

const params = new URLSearchParams(location.search);
if (params.get("month")) $("month").value = params.get("month");
if (state.token) start().catch(() => { sessionStorage.removeItem("commonwatt.token"); state.token = null; });

// AIS operator console: reads the /v1 API with the signed-in token, follows /v1/stream,
// and sends operator commands to the same control-plane routes as any client.
// Money and quantities are shown as the exact decimal strings the API returns: never
// parsed to a float for display (charts parse them only to place points).

const TOKEN_KEY = "ais.token";
const OPEN_ORDERS = new Set(["PENDING_NEW", "SUBMITTED", "OPEN", "PARTIALLY_FILLED"]);
const PAGES = ["overview", "charts", "exposure", "positions", "orders", "risk",
  "reconciliation", "sessions", "audit", "reports"];
const $ = (id) => document.getElementById(id);

const state = {
  unit: "quote",          // the quote currency of the book, from the exposure read model
  position: 0,            // the read models' position last rendered
  pending: false,         // a refresh is wanted while one runs
  loading: null,          // the refresh in flight
  cursors: { orders: null, risk: null },
  stream: null,           // AbortController of the live stream
};

class ApiError extends Error {
  constructor(status, problem) {
    super(`${problem.title || "Error"} (${status}): ${problem.detail || ""}`.trim());
    this.status = status;
    this.problem = problem;
  }
}

// --- HTTP -----------------------------------------------------------------------------------
function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, { method = "GET", body, minPosition } = {}) {
  const url = new URL(path, location.origin);
  if (minPosition) url.searchParams.set("min_position", String(minPosition));
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401 && path !== "/v1/portfolio") signOut("The token was refused (401): sign in again.");
  if (!response.ok) {
    let problem = { title: response.statusText };
    try { problem = await response.json(); } catch { /* not JSON */ }
    throw new ApiError(response.status, problem);
  }
  return response;
}

const getJson = async (path, options) => (await api(path, options)).json();

function query(path, params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `${path}?${text}` : path;
}

// --- formatting (exact decimals) ------------------------------------------------------------
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** A decimal string with its decimal point moved `places` to the right, exactly. */
function shift(text, places) {
  const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(String(text).trim());
  if (!m) return String(text);
  const [, sign, whole = "", frac = ""] = m;
  const digits = (whole + frac).replace(/^0+(?=\d)/, "") || "0";
  let point = whole.replace(/^0+(?=\d)/, "").length + Number(m[4] || 0) + places
    - (whole + frac).length + digits.length;
  let body = digits;
  if (point <= 0) { body = "0".repeat(1 - point) + body; point = 1; }
  if (point > body.length) body += "0".repeat(point - body.length);
  let out = body.slice(0, point) + (point < body.length ? "." + body.slice(point) : "");
  out = out.replace(/^0+(?=\d)/, "");
  return (sign === "-" && /[1-9]/.test(out) ? "-" : "") + out;
}

/** A value with its unit: `<span class="v">exact</span><span class="unit">unit</span>`. */
function amount(value, unit) {
  if (value === null || value === undefined) return document.createTextNode("—");
  const frag = document.createDocumentFragment();
  frag.append(el("span", { class: "v" }, String(value)));
  if (unit) frag.append(el("span", { class: "unit" }, unit));
  return frag;
}
const percent = (ratio) => (ratio === null || ratio === undefined ? amount(null) : amount(shift(ratio, 2), "%"));
const times = (ratio) => (ratio === null || ratio === undefined ? amount(null) : amount(ratio, "×"));

function put(id, content) {
  const node = $(id);
  node.replaceChildren(content);
  return node;
}

/** The first 8 characters of an id, the whole id as its tooltip and accessible name. */
const shortId = (id) => el("code", { title: id, "aria-label": id }, `${String(id).slice(0, 8)}…`);
const baseOf = (instrument) => instrument.split(/[-/]/)[0];

function quoteOf(instrument) {
  for (const sep of ["-", "/"]) if (instrument.includes(sep)) return instrument.split(sep).pop();
  return null;
}

/** A table from column specs {label, key | cell(row), num, unit}. */
function table(id, columns, rows, empty = "Nothing yet.") {
  const head = el("tr", {}, ...columns.map((c) => el("th", { scope: "col", class: c.num ? "num" : "" }, c.label)));
  const body = rows.length
    ? rows.map((row) => el("tr", {}, ...columns.map((c) => {
      const value = c.cell ? c.cell(row) : row[c.key];
      const content = c.cell ? value : c.num ? amount(value, typeof c.unit === "function" ? c.unit(row) : c.unit) : (value ?? "—");
      return el("td", { class: [c.num ? "num" : "", c.cls ? c.cls(row) : ""].join(" ").trim() }, content);
    })))
    : [el("tr", {}, el("td", { colspan: String(columns.length) }, empty))];
  $(id).replaceChildren(el("thead", {}, head), el("tbody", {}, ...body));
}

function message(text, kind = "error") {
  const box = $("message");
  box.textContent = text;
  box.className = `message ${kind === "info" ? "info" : ""}`;
  box.hidden = !text;
}

// --- operator commands ----------------------------------------------------------------------
/** Ask for confirmation and a reason; resolves to the reason, or null if cancelled. */
function confirmWithReason(text) {
  const dialog = $("confirm");
  $("confirm-text").textContent = text;
  const reason = $("confirm-reason");
  reason.value = "";
  dialog.returnValue = "";
  dialog.showModal();
  reason.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok" && reason.value.trim() ? reason.value.trim() : null);
    }, { once: true });
  });
}

async function command(text, path) {
  const reason = await confirmWithReason(text);
  if (reason === null) return;
  try {
    const result = await getJson(path, { method: "POST", body: { reason } });
    const what = result.kill_state ? `kill switch ${result.kill_state}` : `${result.status}`;
    message(`Done: ${what} (requested by ${result.requested_by}, log position ${result.position}).`, "info");
    await refresh(result.position);
  } catch (error) {
    message(error.message);
  }
}

// --- pages ----------------------------------------------------------------------------------
const loaders = {
  async overview(at) {
    const [portfolio, exposure, kill, recon, ready] = await Promise.all([
      getJson("/v1/portfolio", { minPosition: at }),
      getJson("/v1/exposure", { minPosition: at }),
      getJson("/v1/risk/kill-switch", { minPosition: at }),
      getJson("/v1/reconciliation?limit=100", { minPosition: at }),
      fetch("/readyz").then((r) => r.json()).catch(() => null),
    ]);
    const quotes = new Set(exposure.instruments.map((i) => quoteOf(i.instrument)).filter(Boolean));
    if (quotes.size === 1) state.unit = [...quotes][0];
    document.querySelectorAll(".currency").forEach((u) => { u.textContent = state.unit; });
    const u = state.unit;
    const navNode = put("nav-value", amount(portfolio.nav, u));
    navNode.dataset.value = portfolio.nav ?? "";
    put("hwm", amount(portfolio.high_water_mark, u));
    put("drawdown", percent(portfolio.drawdown));
    put("max-drawdown", percent(portfolio.max_drawdown));
    put("daily-pnl", amount(portfolio.daily_pnl, u));
    put("leverage", times(exposure.leverage));
    const killNode = put("kill-state", el("span", { class: `state-${kill.kill_state}` }, kill.kill_state));
    killNode.dataset.value = kill.kill_state;
    $("kill-detail").textContent = kill.changed_at
      ? `Last change ${kill.changed_at} by ${kill.actor ?? "?"}: ${kill.reason ?? ""}` : "Never engaged.";
    const lag = ready && ready.lag ? Math.max(0, ...Object.values(ready.lag)) : null;
    showLag(lag);
    put("recon-status", reconSummary(recon.items));
    $("as-of").textContent = portfolio.as_of ?? "—";
    $("position").textContent = String(portfolio.position);
    return portfolio.position;
  },

  async charts(at) {
    const sample = await getJson("/v1/portfolio/history/sample?points=300", { minPosition: at });
    chart("chart-nav", sample.items, "nav", state.unit, (v) => v);
    chart("chart-dd", sample.items, "drawdown", "%", (v) => shift(v, 2));
    return sample.position;
  },

  async exposure(at) {
    const data = await getJson("/v1/exposure", { minPosition: at });
    const u = state.unit;
    put("exp-long", amount(data.long, u));
    put("exp-short", amount(data.short, u));
    put("exp-gross", amount(data.gross, u));
    put("exp-net", amount(data.net, u));
    put("exp-leverage", times(data.leverage));
    table("exposure-table", [
      { label: "Instrument", key: "instrument" },
      { label: "Quantity", key: "quantity", num: true, unit: (r) => baseOf(r.instrument) },
      { label: "Mark", key: "mark", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Notional", key: "notional", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Weight", cell: (r) => percent(r.weight), num: true },
    ], data.instruments, "No exposure.");
    return data.position;
  },

  async positions(at) {
    const data = await getJson("/v1/positions", { minPosition: at });
    table("positions-table", [
      { label: "Instrument", key: "instrument" },
      { label: "Quantity", key: "quantity", num: true, unit: (r) => baseOf(r.instrument) },
      { label: "Average entry", key: "average_entry", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Realized P&L", key: "realized_pnl", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Fees", key: "fees", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Trades", key: "trades", num: true },
      { label: "Updated", key: "updated_at" },
    ], data.items, "No positions.");
    return data.position;
  },

  async orders(at) {
    const filters = Object.fromEntries(new FormData($("order-filters")));
    const data = await getJson(query("/v1/orders", { ...filters, limit: "100", cursor: state.cursors.orders }), { minPosition: at });
    table("orders-table", [
      { label: "Placed", key: "placed_at", cls: () => "time" },
      { label: "Instrument", key: "instrument" },
      { label: "Side", key: "side" },
      { label: "Type", key: "order_type" },
      { label: "Quantity", key: "quantity", num: true, unit: (r) => baseOf(r.instrument) },
      { label: "Limit", key: "limit_price", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Filled", key: "filled_quantity", num: true, unit: (r) => baseOf(r.instrument) },
      { label: "Avg price", key: "average_price", num: true, unit: (r) => quoteOf(r.instrument) },
      { label: "Status", key: "status", cls: (r) => `status-${r.status}` },
      { label: "Order", cell: (r) => shortId(r.order_id), cls: () => "id" },
      { label: "Action", cell: (r) => (OPEN_ORDERS.has(r.status)
        ? el("button", { type: "button", class: "small danger", onclick: () => command(`Cancel order ${r.order_id} (${r.side} ${r.quantity} ${r.instrument})?`, `/v1/orders/${r.order_id}/cancel`) }, "Cancel…")
        : "") },
    ], data.items, "No orders match.");
    pager("orders-more", "orders", data.next_cursor);
    return data.position;
  },

  async risk(at) {
    const filters = Object.fromEntries(new FormData($("risk-filters")));
    const [data, kill] = await Promise.all([
      getJson(query("/v1/risk/decisions", { ...filters, limit: "100", cursor: state.cursors.risk }), { minPosition: at }),
      getJson("/v1/risk/kill-switch", { minPosition: at }),
    ]);
    put("risk-kill-state", el("span", { class: `state-${kill.kill_state}` }, kill.kill_state));
    $("risk-kill-detail").textContent = kill.changed_at ? `since ${kill.changed_at} (${kill.actor ?? "?"}: ${kill.reason ?? ""})` : "";
    table("risk-table", [
      { label: "Position", key: "position", num: true },
      { label: "At", key: "at", cls: () => "time" },
      { label: "Decision", key: "decision", cls: (r) => `dec-${r.decision}` },
      { label: "Command", key: "command_type" },
      { label: "Guard", key: "guard" },
      { label: "Observed", key: "observed", num: true },
      { label: "Limit", key: "limit", num: true },
      { label: "Reason", key: "reason" },
      { label: "Actor", key: "actor" },
    ], data.items, "No decisions match.");
    pager("risk-more", "risk", data.next_cursor);
    return Math.min(data.position, kill.position);
  },

  async reconciliation(at) {
    const data = await getJson("/v1/reconciliation?limit=50", { minPosition: at });
    const list = $("recon-list");
    list.replaceChildren();
    if (!data.items.length) list.append(el("p", {}, "No reconciliation snapshot yet (run `ais reconcile`)."));
    for (const result of data.items) {
      const id = `recon-${result.venue}-${result.snapshot}`.replace(/[^A-Za-z0-9-]/g, "_");
      list.append(
        el("h3", {}, `${result.venue} · snapshot ${result.snapshot} · `,
          el("span", { class: `status-${result.status}` }, result.status ?? "—"),
          el("span", { class: "meta" }, `  ${result.taken_at ?? ""} · ${result.matched ?? 0} matched, ${result.drift ?? 0} drift, ${result.breaks ?? 0} breaks`)),
        el("div", { class: "scroll" }, el("table", { id })),
      );
      table(id, [
        { label: "Kind", key: "kind" }, { label: "Item", key: "item" },
        { label: "Expected", key: "expected", num: true }, { label: "Observed", key: "observed", num: true },
        { label: "Difference", key: "difference", num: true },
        { label: "Status", key: "status", cls: (r) => `status-${r.status}` },
        { label: "Note", key: "note" }, { label: "Action", key: "action" },
      ], result.items, "No items.");
    }
    return data.position;
  },

  async sessions(at) {
    const data = await getJson("/v1/sessions?limit=100", { minPosition: at });
    table("sessions-table", [
      { label: "Started", key: "started_at", cls: () => "time" },
      { label: "Mode", key: "mode" },
      { label: "Starting capital", key: "starting_capital", num: true, unit: () => state.unit },
      { label: "Status", key: "status", cls: (r) => `state-${r.status}` },
      { label: "Updated", key: "updated_at" },
      { label: "Last reason", key: "last_reason" },
      { label: "Session", cell: (r) => shortId(r.session_id), cls: () => "id" },
      { label: "Action", cell: (r) => (r.status === "ACTIVE"
        ? el("button", { type: "button", class: "small danger", onclick: () => command(`Halt session ${r.session_id} (${r.mode})?`, `/v1/sessions/${r.session_id}/halt`) }, "Halt…")
        : "") },
    ], data.items, "No sessions.");
    return data.position;
  },

  async audit() {
    const box = $("audit-checkpoint");
    try {
      const { items } = await getJson("/v1/audit/checkpoints");
      const last = items[items.length - 1];
      box.replaceChildren(last
        ? el("dl", { class: "tiles wide" },
          ...[["Signed checkpoint", last.created_at], ["Tree size", `${last.tree_size} events`],
            ["Last position", String(last.last_position)], ["Chain head", last.chain_head],
            ["Merkle root", last.merkle_root], ["Signature (Ed25519)", last.signature]]
            .map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", { class: "hash" }, v))))
        : el("p", {}, "The log has not been sealed yet (run `ais audit seal --checkpoint`)."));
    } catch (error) {
      box.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
    }
    return null;
  },

  async reports() { return null; },
};

function reconSummary(items) {
  if (!items.length) return document.createTextNode("no snapshot yet");
  const latest = new Map();
  for (const r of items) if (!latest.has(r.venue) || latest.get(r.venue).snapshot < r.snapshot) latest.set(r.venue, r);
  const rank = { MATCHED: 0, DRIFT: 1, BREAK: 2 };
  const worst = [...latest.values()].reduce((a, b) => ((rank[b.status] ?? 0) > (rank[a.status] ?? 0) ? b : a));
  return el("span", { class: `status-${worst.status}` }, `${worst.status} (${latest.size} venue${latest.size > 1 ? "s" : ""})`);
}

function pager(id, name, next) {
  const button = $(id);
  button.hidden = !next && !state.cursors[name];
  button.textContent = next ? "Next page" : "Back to first page";
  button.onclick = () => { state.cursors[name] = next; refresh(); };
}

// --- charts (inline SVG) --------------------------------------------------------------------
function chart(id, items, key, unit, label) {
  const host = $(id);
  if (items.length < 2) { host.replaceChildren(el("p", {}, "Not enough marks yet.")); return; }
  const W = 900, H = 260, L = 12, R = 12, T = 28, B = 34;
  const xs = items.map((p) => p.position), ys = items.map((p) => Number(p[key]));
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  let lo = 0, hi = 0;
  items.forEach((p, i) => { if (ys[i] < ys[lo]) lo = i; if (ys[i] > ys[hi]) hi = i; });
  const y0 = ys[lo], y1 = ys[hi] === ys[lo] ? ys[lo] + 1 : ys[hi];
  const px = (x) => L + ((x - x0) / Math.max(1, x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${key} from ${label(items[0][key])} to ${label(items[items.length - 1][key])} ${unit}, low ${label(items[lo][key])}, high ${label(items[hi][key])}`);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
  };
  for (const y of [T, H - B]) add("line", { x1: L, y1: y, x2: W - R, y2: y, stroke: "#c9ced6" });
  add("text", { x: L, y: T - 8, "font-size": 12, fill: "#16191d" }, `high ${label(items[hi][key])} ${unit}`);
  add("text", { x: W - R, y: T - 8, "text-anchor": "end", "font-size": 12, fill: "#16191d" }, `low ${label(items[lo][key])} ${unit}`);
  add("text", { x: L, y: H - 10, "font-size": 12, fill: "#4a525c" }, `${items[0].at} (position ${items[0].position})`);
  add("text", { x: W - R, y: H - 10, "text-anchor": "end", "font-size": 12, fill: "#4a525c" }, `${items[items.length - 1].at} (position ${items[items.length - 1].position})`);
  const points = items.map((p, i) => `${px(p.position).toFixed(1)},${py(ys[i]).toFixed(1)}`).join(" ");
  add("polyline", { points, fill: "none", stroke: key === "nav" ? "#0b5cad" : "#b00020", "stroke-width": 2 });
  host.replaceChildren(svg);
}

// --- audit proof (RFC 9162 inclusion, checked here with WebCrypto) --------------------------
const hexBytes = (hex) => Uint8Array.from(hex.match(/../g) || [], (h) => parseInt(h, 16));
const toHex = (bytes) => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
async function sha256(...parts) {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { joined.set(p, at); at += p.length; }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

async function rootFromPath(leaf, index, size, path) {
  let fn = BigInt(index), sn = BigInt(size - 1);
  let r = await sha256(Uint8Array.of(0), leaf);
  for (const p of path) {
    if (sn === 0n) return null;
    if ((fn & 1n) || fn === sn) {
      r = await sha256(Uint8Array.of(1), p, r);
      if (!(fn & 1n)) while (!(fn & 1n) && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await sha256(Uint8Array.of(1), r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  return sn === 0n ? toHex(r) : null;
}

async function checkProof(event) {
  event.preventDefault();
  const out = $("proof-result");
  const position = $("proof-position").value;
  out.replaceChildren("Fetching…");
  try {
    const proof = await getJson(`/v1/audit/proof/${encodeURIComponent(position)}`);
    const root = await rootFromPath(hexBytes(proof.record_sha256), proof.leaf_index,
      proof.tree_size, proof.proof.map(hexBytes));
    const ok = root === proof.checkpoint.merkle_root;
    const file = URL.createObjectURL(new Blob([JSON.stringify(proof, null, 2)], { type: "application/json" }));
    out.replaceChildren(
      el("p", { class: ok ? "ok" : "bad", id: "proof-verdict" }, ok
        ? `Included: event ${proof.position} (${proof.topic}) is leaf ${proof.leaf_index} of the ${proof.tree_size}-event tree signed ${proof.checkpoint.created_at}; its ${proof.proof.length}-step path leads to the Merkle root.`
        : `NOT verified: the path of event ${proof.position} does not lead to the checkpoint's Merkle root.`),
      el("p", { class: "meta" }, "Checked here: the Merkle path from the record hash. The record bytes and the Ed25519 signature are checked offline by ",
        el("code", {}, "ais audit check-proof FILE"), ": "),
      el("a", { href: file, download: `proof-${proof.position}.json` }, `save proof-${proof.position}.json`),
    );
  } catch (error) {
    out.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

async function downloadLots(event) {
  event.preventDefault();
  const form = Object.fromEntries(new FormData($("lots-form")));
  try {
    const response = await api(query("/v1/reports/lots", form));
    const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "")?.[1] || "lots.csv";
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
    document.body.append(link);
    link.click();
    link.remove();
    message(`Downloaded ${name}.`, "info");
  } catch (error) {
    message(error.message);
  }
}

// --- routing, refresh, live stream ----------------------------------------------------------
function currentPage() {
  const name = location.hash.slice(1);
  return PAGES.includes(name) ? name : "overview";
}

function show() {
  const page = currentPage();
  for (const section of document.querySelectorAll("section[data-page]")) section.hidden = section.dataset.page !== page;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${page}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  message("");
  refresh();
}

/** Reload the shown page (at least at `at`); coalesces refreshes asked for meanwhile. */
async function refresh(at) {
  if (state.loading) { state.pending = true; return state.loading; }
  state.loading = (async () => {
    try {
      const page = currentPage();
      const position = await loaders[page](at);
      if (position !== null && position !== undefined) state.position = Math.max(state.position, position);
      document.body.dataset.loaded = page;
    } catch (error) {
      if (error.status !== 401) message(error.message);
    } finally {
      state.loading = null;
    }
    if (state.pending) { state.pending = false; await refresh(); }
  })();
  return state.loading;
}

function live(text, behind) {
  const node = $("live");
  node.textContent = text;
  node.classList.toggle("behind", behind);
}

/** Follow /v1/stream with fetch (the token stays in the header), reconnecting on loss. */
async function follow() {
  let wait = 500;
  while (token()) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const response = await fetch("/v1/stream", {
        headers: { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" },
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(`stream: ${response.status}`);
      wait = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\n");
          if (data) onPosition(JSON.parse(data));
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    live("reconnecting…", true);
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

function showLag(lag) {
  put("lag", lag === null ? amount(null) : amount(String(lag), lag === 1 ? "event" : "events"));
}

function onPosition({ position, head, lag }) {
  document.body.dataset.position = String(position);
  showLag(lag);
  live(lag > 0 ? `behind by ${lag} events (at ${position} of ${head})` : `live · position ${position}`, lag > 0);
  if (position !== state.position) refresh();
}

// --- sign in / out --------------------------------------------------------------------------
async function signIn(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, value);
  $("signin-error").textContent = "";
  try {
    await api("/v1/portfolio");
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin-error").textContent = error.status === 401 ? "That token is not valid." : error.message;
    return;
  }
  $("token").value = "";
  start();
}

function signOut(reason = "") {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.stream) state.stream.abort();
  $("signin").hidden = false;
  $("nav").hidden = $("main").hidden = $("signout").hidden = true;
  $("signin-error").textContent = reason;
  message("");
  live("signed out", false);
}

function start() {
  $("signin").hidden = true;
  $("nav").hidden = $("main").hidden = $("signout").hidden = false;
  live("connecting…", false);
  show();
  follow();
}

$("signin").addEventListener("submit", signIn);
$("signout").addEventListener("click", () => signOut());
$("kill-engage").addEventListener("click", () => command("Engage the kill switch? The desk halts and every open order is cancelled.", "/v1/kill-switch"));
$("kill-reset").addEventListener("click", () => command("Reset the kill switch? Trading may resume.", "/v1/kill-switch/reset"));
$("order-filters").addEventListener("submit", (e) => { e.preventDefault(); state.cursors.orders = null; refresh(); });
$("risk-filters").addEventListener("submit", (e) => { e.preventDefault(); state.cursors.risk = null; refresh(); });
$("proof-form").addEventListener("submit", checkProof);
$("lots-form").addEventListener("submit", downloadLots);
window.addEventListener("hashchange", show);
if (token()) start(); else $("token").focus();

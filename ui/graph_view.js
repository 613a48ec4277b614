// A run's graph, drawn as SVG straight into the page (Streamlit custom component v2: no iframe,
// no React Flow, no Markdown per node). Loaded by ui/graph_view.py. Called again on every rerun
// with the latest data: the drawing is built once per graph (`data.sig`), later calls only
// recolour nodes whose status changed, so a live 2,000-node run stays cheap.
//
// data: {sig, nodes: [[id, label, type, x, y]], edges: [[source, target, label]], w, h, box: [w, h],
//        status: {id: status}, colours: {status: [fill, stroke]}, selected, maxh, clickable}
// A click on a node sends its id back as the trigger value `clicked`. Wheel (with Ctrl) or the
// buttons zoom, dragging pans, a double click on the background fits the graph again.
const NS = "http://www.w3.org/2000/svg";
const PAD = 16;
const LAZY_LABELS = 300; // nodes: above this, labels are made only once zoomed in (see `label`)

function el(name, attrs, parent) {
  const node = document.createElementNS(NS, name);
  for (const key in attrs) node.setAttribute(key, attrs[key]);
  if (parent) parent.appendChild(node);
  return node;
}

function edgePath(a, b, bw, bh) {
  const x1 = a[3] + bw, y1 = a[4] + bh / 2, x2 = b[3], y2 = b[4] + bh / 2;
  if (x2 > x1 + 4) {
    const dx = (x2 - x1) / 2;
    return `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
  }
  // backwards (a loop, or the next band of a long graph): leave below the source, enter from the left
  const yb = Math.max(a[4], b[4]) + bh + 14;
  return `M${a[3] + bw / 2},${a[4] + bh} C${a[3] + bw / 2},${yb} ${x2 - 40},${yb} ${x2 - 40},${y2} L${x2},${y2}`;
}

// Where an edge's "when" label goes: centred in the gap of a forward edge, under the curve of a backward one.
function whenAt(a, b, bw, bh) {
  const x1 = a[3] + bw, x2 = b[3];
  if (x2 > x1 + 4) return [(x1 + x2) / 2, (a[4] + b[4] + bh) / 2 - 6];
  const yb = Math.max(a[4], b[4]) + bh + 14;
  return [(a[3] + bw / 2 + x2 - 40) / 2, yb + 4];
}

function fitBox(state) {
  const d = state.data;
  return [-PAD, -PAD, d.w + 2 * PAD, d.h + 2 * PAD];
}

function applyView(state) {
  const vb = state.view;
  state.svg.setAttribute("viewBox", vb.join(" "));
  const scale = Math.min(state.svg.clientWidth / vb[2], state.svg.clientHeight / vb[3]);
  state.root.classList.toggle("gv-tiny", scale < 0.45); // labels too small to read: boxes only
  if (scale >= 0.45 && state.nodes) label(state);
}

function size(state) {
  const d = state.data;
  const width = state.root.clientWidth || 1000;
  const natural = (d.h + 2 * PAD) * Math.min(1, width / (d.w + 2 * PAD));
  state.svg.style.height = Math.round(Math.max(140, Math.min(d.maxh, natural))) + "px";
}

function build(root, data, component) {
  root.textContent = "";
  const state = { root, data, nodes: {}, status: {}, selected: null };
  root.__gv = state;
  const [bw, bh] = data.box;
  const style = document.createElement("style");
  let css = "";
  for (const name in data.colours) {
    const [fill, stroke] = data.colours[name];
    css += `.gv-node[data-status="${name}"] rect{fill:${fill};stroke:${stroke}}`;
  }
  style.textContent = css;
  root.appendChild(style);

  const tools = document.createElement("div");
  tools.className = "gv-tools";
  for (const [label, title, act] of [["+", "Zoom in", 0.8], ["\u2212", "Zoom out", 1.25], ["\u2922", "Fit the graph", 0]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.onclick = () => (act ? zoom(state, act) : fit(state));
    tools.appendChild(b);
  }
  root.appendChild(tools);

  const svg = el("svg", { class: "gv-svg", role: "img", "aria-label": "The run's graph", preserveAspectRatio: "xMidYMid meet" }, root);
  state.svg = svg;
  const defs = el("defs", {}, svg);
  const marker = el("marker", { id: "gv-arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" }, defs);
  el("path", { d: "M0,0 L10,5 L0,10 z", class: "gv-arrow" }, marker);
  const byId = {};
  for (const n of data.nodes) byId[n[0]] = n;
  const edges = el("g", { class: "gv-edges" }, svg);
  const whens = [];
  for (const [s, t, label] of data.edges) {
    const a = byId[s], b = byId[t];
    if (!a || !b) continue;
    el("path", { d: edgePath(a, b, bw, bh), class: "gv-edge", "marker-end": "url(#gv-arrow)" }, edges);
    if (label) whens.push([label, ...whenAt(a, b, bw, bh)]);
  }
  const layer = el("g", { class: "gv-nodes" }, svg);
  for (const [id, label, type, x, y] of data.nodes) {
    const g = el("g", { class: "gv-node", transform: `translate(${x},${y})`, "data-id": id, "data-status": "pending", tabindex: "0", role: "button" }, layer);
    el("rect", { width: bw, height: bh, rx: 8 }, g);
    state.nodes[id] = { g, kind: null, type, label };
  }
  const labels = el("g", { class: "gv-whens" }, svg); // over the nodes: an edge's "when" is never hidden
  for (const [label, x, y] of whens) el("text", { x, y, class: "gv-when", "text-anchor": "middle" }, labels).textContent = label;
  state.labelled = false;
  if (data.nodes.length <= LAZY_LABELS) label(state);
  const pick = (target) => {
    const g = target && target.closest ? target.closest(".gv-node") : null;
    if (g && !state.dragged) state.component.setTriggerValue("clicked", g.getAttribute("data-id"));
  };
  layer.addEventListener("click", (e) => pick(e.target));
  layer.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pick(e.target); } });

  // pan (drag) and zoom (Ctrl + wheel, buttons); a double click on the background fits again
  svg.addEventListener("pointerdown", (e) => {
    state.drag = { x: e.clientX, y: e.clientY, view: state.view.slice() };
    state.dragged = false;
  });
  svg.addEventListener("pointermove", (e) => {
    const d = state.drag;
    if (!d) return;
    const k = d.view[2] / svg.clientWidth;
    const dx = (e.clientX - d.x), dy = (e.clientY - d.y);
    if (Math.abs(dx) + Math.abs(dy) > 4) state.dragged = true;
    if (state.dragged) {
      state.view = [d.view[0] - dx * k, d.view[1] - dy * k, d.view[2], d.view[3]];
      applyView(state);
    }
  });
  const end = () => { state.drag = null; setTimeout(() => { state.dragged = false; }, 0); };
  svg.addEventListener("pointerup", end);
  svg.addEventListener("pointerleave", end);
  svg.addEventListener("wheel", (e) => {
    if (!e.ctrlKey && !e.metaKey) return; // a plain wheel scrolls the page
    e.preventDefault();
    zoom(state, e.deltaY > 0 ? 1.15 : 0.87);
  }, { passive: false });
  svg.addEventListener("dblclick", (e) => { if (!e.target.closest(".gv-node")) fit(state); });
  if (window.ResizeObserver) {
    state.resize = new ResizeObserver(() => { size(state); applyView(state); });
    state.resize.observe(root);
  }
  size(state);
  fit(state);
  return state;
}

// A node's name, type and status as text (set as textContent: never parsed as markup). A large graph
// gets them only once it is zoomed in far enough to read them: until then its nodes are plain boxes.
function label(state) {
  if (state.labelled) return;
  state.labelled = true;
  for (const id in state.nodes) {
    const n = state.nodes[id];
    const title = el("title", {}, n.g);
    title.textContent = `${n.label} (${n.type})`;
    const name = el("text", { x: 10, y: 23, class: "gv-label" }, n.g);
    name.textContent = n.label;
    n.kind = el("text", { x: 10, y: 43, class: "gv-kind" }, n.g);
    const now = state.status[id] || "pending";
    n.kind.textContent = now === "pending" ? n.type : `${n.type} \u00b7 ${now}`;
  }
}

function fit(state) {
  state.view = fitBox(state);
  applyView(state);
}

function zoom(state, factor) {
  const v = state.view;
  const cx = v[0] + v[2] / 2, cy = v[1] + v[3] / 2;
  const w = v[2] * factor, h = v[3] * factor;
  state.view = [cx - w / 2, cy - h / 2, w, h];
  applyView(state);
}

function paint(state, data) {
  const status = data.status || {};
  for (const id in state.nodes) {
    const now = status[id] || "pending";
    if (state.status[id] === now) continue;
    state.status[id] = now;
    const n = state.nodes[id];
    n.g.setAttribute("data-status", now);
    if (n.kind) n.kind.textContent = now === "pending" ? n.type : `${n.type} \u00b7 ${now}`;
  }
  if (state.selected !== data.selected) {
    if (state.selected && state.nodes[state.selected]) state.nodes[state.selected].g.classList.remove("gv-selected");
    if (data.selected && state.nodes[data.selected]) state.nodes[data.selected].g.classList.add("gv-selected");
    state.selected = data.selected;
  }
}

export default function (component) {
  const { data, parentElement } = component;
  let root = parentElement.querySelector(".gv-root");
  if (!root) {
    root = document.createElement("div");
    root.className = "gv-root";
    parentElement.appendChild(root);
  }
  let state = root.__gv;
  if (!state || state.data.sig !== data.sig) state = build(root, data, component);
  state.component = component; // the latest callbacks
  paint(state, data);
  root.setAttribute("data-drawn", data.sig);
}

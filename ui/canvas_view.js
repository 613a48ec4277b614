// The viewport policy of the workflow canvas, loaded by the patched streamlit-flow build before its
// own bundle (see ui/canvas.py, which inserts the calls into the bundle). Plain ES5-ish JavaScript in
// the component's iframe; it reads and writes nothing but this iframe's sessionStorage.
//
// * A new view (first drawing, or a new `viewKey`: another document, Layout, an import, another run)
//   is fitted to its nodes, unless this tab saved a viewport for that key at the same canvas width
//   (the iframe was only re-created, e.g. the side panel was toggled back): then that one comes back.
// * A later drawing of the same view (every Streamlit redraw: a node added, a status changed) keeps
//   the user's pan and zoom; nodes that were not drawn before and lie outside the view are brought in.
// * A change of the canvas width (window resized, side panel toggled) fits the view again.
// * Every pan/zoom end is saved under the view's key, so it survives the iframe being re-created.
(function () {
  "use strict";
  var PREFIX = "workflow-studio-viewport:";
  var FIT = { padding: 0.12, maxZoom: 1 };
  var s = { instance: null, viewKey: null, incoming: [], width: 0, timer: null };

  function width() {
    var pane = document.querySelector(".react-flow");
    return pane ? pane.clientWidth : document.documentElement.clientWidth;
  }
  function height() {
    var pane = document.querySelector(".react-flow");
    return pane ? pane.clientHeight : document.documentElement.clientHeight;
  }
  function load(key) {
    try { return JSON.parse(window.sessionStorage.getItem(PREFIX + key) || "null"); } catch (e) { return null; }
  }
  function save(viewport) {
    if (s.viewKey === null || !viewport) return;
    var saved = { x: viewport.x, y: viewport.y, zoom: viewport.zoom, width: width() };
    try { window.sessionStorage.setItem(PREFIX + s.viewKey, JSON.stringify(saved)); } catch (e) { /* storage off */ }
  }
  function fit(tries) {
    var instance = s.instance;
    if (!instance) return;
    // fitView answers false while nodes are not measured yet: try again on the next frames
    if (!instance.fitView(FIT) && (tries || 0) < 20) {
      window.requestAnimationFrame(function () { fit((tries || 0) + 1); });
      return;
    }
    save(instance.getViewport());
  }
  function reveal(ids) {
    var instance = s.instance;
    var nodes = instance.getNodes().filter(function (n) { return ids.indexOf(n.id) >= 0; });
    if (!nodes.length) return;
    var box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    nodes.forEach(function (n) {
      var p = n.positionAbsolute || n.position;
      box.x0 = Math.min(box.x0, p.x); box.y0 = Math.min(box.y0, p.y);
      box.x1 = Math.max(box.x1, p.x + (n.width || 0)); box.y1 = Math.max(box.y1, p.y + (n.height || 0));
    });
    var v = instance.getViewport();
    var seen = { x0: -v.x / v.zoom, y0: -v.y / v.zoom, x1: (width() - v.x) / v.zoom, y1: (height() - v.y) / v.zoom };
    var margin = 40 / v.zoom;  // screen pixels kept free around the new nodes
    if (box.x1 - box.x0 + 2 * margin > seen.x1 - seen.x0 || box.y1 - box.y0 + 2 * margin > seen.y1 - seen.y0) {
      // they do not fit at this zoom: centre them, zoomed out just enough
      var zoom = Math.min(v.zoom, 0.9 * width() / (box.x1 - box.x0 + 1), 0.9 * height() / (box.y1 - box.y0 + 1));
      instance.setCenter((box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2, { zoom: Math.max(zoom, 0.05) });
    } else {
      // the smallest pan that brings them in (the rest of the view stays where the user had it)
      var dx = 0, dy = 0;
      if (box.x1 + margin > seen.x1) dx = box.x1 + margin - seen.x1;
      if (box.x0 - margin < seen.x0) dx = box.x0 - margin - seen.x0;
      if (box.y1 + margin > seen.y1) dy = box.y1 + margin - seen.y1;
      if (box.y0 - margin < seen.y0) dy = box.y0 - margin - seen.y0;
      if (!dx && !dy) return;
      instance.setViewport({ x: v.x - dx * v.zoom, y: v.y - dy * v.zoom, zoom: v.zoom });
    }
    save(instance.getViewport());
  }

  window.__studioFlow = {
    // the component accepted a drawing from Python: remember the nodes it did not have yet
    incoming: function (current, next) {
      var had = {};
      (current || []).forEach(function (n) { had[n.id] = true; });
      (next || []).forEach(function (n) { if (!had[n.id]) s.incoming.push(n.id); });
    },
    // the component finished a layout pass (after each drawing it accepted): place the view
    placed: function (instance, args) {
      s.instance = instance;
      var key = String(args.viewKey === undefined || args.viewKey === null ? "" : args.viewKey);
      if (key !== s.viewKey) {
        s.viewKey = key;
        s.incoming = [];
        s.width = width();
        var saved = load(key);
        if (saved && Math.abs(saved.width - s.width) < 2) {
          instance.setViewport({ x: saved.x, y: saved.y, zoom: saved.zoom });
        } else {
          fit(0);
        }
        return;
      }
      var fresh = s.incoming;
      s.incoming = [];
      if (fresh.length) reveal(fresh);
    },
    // the user (or the minimap, or a fit) moved the view
    moved: function (viewport) { save(viewport); },
    minimapColor: function (node) {
      return (node.style && node.style.background) || "#e2e8f0";
    },
  };

  if (window.ResizeObserver) {
    new window.ResizeObserver(function () {
      var now = width();
      if (!s.instance || Math.abs(now - s.width) < 2) return;
      s.width = now;
      window.clearTimeout(s.timer);
      s.timer = window.setTimeout(function () { fit(0); }, 120);
    }).observe(document.documentElement);
  }
})();

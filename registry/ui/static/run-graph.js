// The run graph: dagre lays the steps out, this draws them as SVG. A node is a button:
// clicking it (or Enter / Space on it) shows that step's panel and hides the others.
(function () {
  const box = document.getElementById("graph");
  const data = JSON.parse(document.getElementById("graph-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const NODE_H = 46;
  // wide enough for the longer of its two lines (12-13px text: ~7.4px a character)
  const widthOf = (n) => Math.max(120, Math.min(320, 7.4 * Math.max(...n.label.split("\n").map((l) => l.length)) + 24));

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function layout() {
    const g = new dagre.graphlib.Graph();
    g.setGraph({ rankdir: data.nodes.length > 12 ? "TB" : "LR", nodesep: 18, ranksep: 40, marginx: 8, marginy: 8 });
    g.setDefaultEdgeLabel(() => ({}));
    data.nodes.forEach((n) => g.setNode(n.id, { width: widthOf(n), height: NODE_H }));
    data.edges.forEach(([a, b]) => g.setEdge(a, b));
    dagre.layout(g);
    return g;
  }

  function select(id, focusPanel) {
    document.querySelectorAll(".step").forEach((panel) => {
      panel.hidden = panel.dataset.step !== id;
    });
    box.querySelectorAll(".node").forEach((n) => n.classList.toggle("selected", n.dataset.step === id));
    const panel = document.getElementById("step-" + id);
    if (panel && focusPanel) panel.focus();
    // a log's tail: its last line in view, where a failure usually says why
    panel?.querySelectorAll("pre.log").forEach((log) => { log.scrollTop = log.scrollHeight; });
    history.replaceState(null, "", "#step-" + encodeURIComponent(id));
  }

  function draw(g) {
    const size = g.graph();
    const svg = el("svg", { viewBox: `0 0 ${size.width} ${size.height}`, role: "group", "aria-label": "steps" });
    svg.style.maxWidth = size.width + "px";
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" }, defs);
    el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrow" }, marker);
    g.edges().forEach((e) => {
      const pts = g.edge(e).points.map((p) => `${p.x},${p.y}`).join(" ");
      el("polyline", { points: pts, class: "edge", "marker-end": "url(#arrow)" }, svg);
    });
    data.nodes.forEach((n) => {
      const pos = g.node(n.id);
      const group = el("g", {
        class: `node s-${n.status}`, transform: `translate(${pos.x - pos.width / 2},${pos.y - NODE_H / 2})`,
        tabindex: 0, role: "button", "data-step": n.id, "aria-label": `${n.id}: ${n.status}`,
      }, svg);
      el("rect", { width: pos.width, height: NODE_H, rx: 6 }, group);
      const [name, module] = n.label.split("\n");
      el("text", { x: 10, y: 19, class: "name" }, group).textContent = name;
      el("text", { x: 10, y: 36, class: "module" }, group).textContent = module || n.status;
      group.addEventListener("click", () => select(n.id, false));
      group.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); select(n.id, true); }
      });
    });
    box.replaceChildren(svg);
  }

  draw(layout());
  const wanted = decodeURIComponent(location.hash.replace(/^#step-/, ""));
  const first = data.nodes.find((n) => n.id === wanted) || data.nodes.find((n) => n.status === "failed") || data.nodes[0];
  if (first) select(first.id, false);
})();

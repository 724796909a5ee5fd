// The sweep chart: the chosen metric of every run, one bar per run in the table's order,
// drawn with uPlot. Choosing another metric redraws without a round trip.
(function () {
  const box = document.getElementById("chart");
  if (!box) return;
  const data = JSON.parse(document.getElementById("sweep-data").textContent);
  const picker = document.getElementById("metric");
  let plot = null;

  function label(row) {
    const parts = data.variants.map((k) => `${k.split(".").pop()}=${row[k]}`);
    return parts.length ? parts.join(" ") : row.run;
  }
  // the variant under each bar when that fits; else the row's # in the table below
  const full = data.rows.map(label);
  const short = Math.max(0, ...full.map((l) => l.length)) <= 16 && full.length <= 12;

  function draw(metric) {
    const xs = data.rows.map((_, i) => i);
    const ys = data.rows.map((row) => (typeof row[metric] === "number" ? row[metric] : null));
    const labels = short ? full : data.rows.map((_, i) => `#${i + 1}`);
    const width = Math.max(320, Math.min(box.clientWidth || 900, 1100));
    const options = {
      width, height: 300,
      scales: {
        x: { time: false, range: [-0.6, xs.length - 0.4] },
        // bars start at zero, so their heights compare
        y: { range: (u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
      },
      legend: { show: true },
      axes: [
        { values: (u, splits) => splits.map((i) => (Number.isInteger(i) ? labels[i] ?? "" : "")),
          space: 28, rotate: short ? -30 : 0, size: short ? 80 : 40, incrs: [1] },
        { label: metric, size: 70 },
      ],
      series: [
        { label: "run", value: (u, i) => (i == null ? "" : `#${i + 1} ${data.rows[i].run} ${full[i]}`) },
        { label: metric, stroke: "#2563eb", fill: "rgba(37,99,235,0.35)",
          paths: uPlot.paths.bars({ size: [0.6, 48] }), points: { show: false } },
      ],
    };
    if (plot) plot.destroy();
    plot = new uPlot(options, [xs, ys], box);
    box.setAttribute("aria-label", `Chart of ${metric} across the sweep's runs`);
  }

  picker.addEventListener("change", () => {
    draw(picker.value);
    const url = new URL(location.href);
    url.searchParams.set("metric", picker.value);
    history.replaceState(null, "", url);
  });
  draw(picker.value || data.metric);
})();

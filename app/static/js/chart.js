// Draws a job's learning curves as inline SVG: ELBO on top, accuracy below, sharing the epoch axis.
// Each series is one <polyline data-series="…"> with a point per epoch, plus a dot per epoch.

const SVG_NS = "http://www.w3.org/2000/svg";
const MARGIN = { left: 52, right: 14, top: 26, bottom: 30 };
const PANEL_GAP = 34;

const ACCURACY_SERIES = [
  { key: "labelled_accuracy", name: "labelled accuracy", className: "labelled" },
  { key: "test_accuracy", name: "test accuracy", className: "test" },
];

function element(name, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [attribute, value] of Object.entries(attributes)) node.setAttribute(attribute, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round tick values covering [low, high]. */
function niceTicks(low, high, count) {
  const span = high - low || Math.abs(high) || 1;
  const rough = span / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
  const ticks = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    ticks.push(Number(value.toPrecision(12)));
  }
  return ticks;
}

function epochTicks(epochs) {
  const step = Math.max(1, Math.ceil(epochs / 8));
  const ticks = [];
  for (let epoch = 1; epoch <= epochs; epoch += step) ticks.push(epoch);
  if (ticks[ticks.length - 1] !== epochs) ticks.push(epochs);
  return ticks;
}

function drawPanel(svg, box, { title, series, yLow, yHigh, formatY, xOf, xTicks }) {
  const yOf = (value) => box.bottom - ((value - yLow) / (yHigh - yLow || 1)) * (box.bottom - box.top);
  const axis = element("g", { class: "axis" });
  for (const tick of niceTicks(yLow, yHigh, 4)) {
    const y = yOf(tick);
    axis.append(element("line", { class: "grid", x1: box.left, x2: box.right, y1: y, y2: y }));
    axis.append(element("text", { x: box.left - 6, y: y + 4, "text-anchor": "end" }, formatY(tick)));
  }
  for (const tick of xTicks) {
    axis.append(element("line", { class: "tick", x1: xOf(tick), x2: xOf(tick), y1: box.bottom, y2: box.bottom + 4 }));
  }
  axis.append(element("rect", { class: "frame", x: box.left, y: box.top, width: box.right - box.left, height: box.bottom - box.top }));
  svg.append(axis);

  svg.append(element("text", { class: "panel-title", x: box.left, y: box.top - 9 }, title));
  for (const line of series) {
    const group = element("g", { class: `series ${line.className}` });
    const coordinates = line.points.map(([epoch, value]) => [xOf(epoch), yOf(value)]);
    group.append(element("polyline", {
      "data-series": line.key,
      points: coordinates.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
    }));
    for (const [x, y] of coordinates) group.append(element("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 3 }));
    svg.append(group);
  }
}

/** One swatch and name per drawn series, as HTML so it wraps on a narrow screen. */
function renderLegend(legend, series) {
  legend.replaceChildren(...series.map((line) => {
    const key = document.createElement("span");
    key.className = `key ${line.className}`;
    key.textContent = line.name;
    return key;
  }));
}

/**
 * Renders the curves of `history` (EpochProgress list) into `svg` and names them in `legend`,
 * with the x axis spanning `epochs` so the chart fills up as training goes on.
 */
export function renderChart(svg, legend, history, epochs) {
  const width = Math.max(svg.clientWidth, 280);
  const height = Math.max(svg.clientHeight, 240);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();

  const lastEpoch = history.length ? history[history.length - 1].epoch : 0;
  const totalEpochs = Math.max(epochs || 1, lastEpoch, 1);
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const xOf = (epoch) => (totalEpochs === 1 ? (left + right) / 2 : left + ((epoch - 1) / (totalEpochs - 1)) * (right - left));
  const xTicks = epochTicks(totalEpochs);
  const panelHeight = (height - MARGIN.top - MARGIN.bottom - PANEL_GAP) / 2;
  const elboBox = { left, right, top: MARGIN.top, bottom: MARGIN.top + panelHeight };
  const accuracyBox = { left, right, top: elboBox.bottom + PANEL_GAP, bottom: elboBox.bottom + PANEL_GAP + panelHeight };

  const elboSeries = { key: "elbo", name: "ELBO", className: "elbo" };
  const elboPoints = history.filter((p) => Number.isFinite(p.elbo)).map((p) => [p.epoch, p.elbo]);
  const elboValues = elboPoints.map(([, value]) => value);
  let elboLow = elboValues.length ? Math.min(...elboValues) : -1;
  let elboHigh = elboValues.length ? Math.max(...elboValues) : 0;
  const pad = (elboHigh - elboLow) * 0.08 || Math.abs(elboHigh) * 0.05 || 1;
  elboLow -= pad;
  elboHigh += pad;
  drawPanel(svg, elboBox, {
    title: "ELBO",
    series: [{ ...elboSeries, points: elboPoints }],
    yLow: elboLow,
    yHigh: elboHigh,
    formatY: (value) => (Math.abs(value) >= 1000 ? value.toExponential(1) : String(Math.round(value * 10) / 10)),
    xOf,
    xTicks,
  });

  const accuracySeries = ACCURACY_SERIES.map((series) => ({
    ...series,
    points: history.filter((p) => Number.isFinite(p[series.key])).map((p) => [p.epoch, p[series.key]]),
  })).filter((series) => series.points.length > 0 || series.key === "labelled_accuracy");
  drawPanel(svg, accuracyBox, {
    title: "Accuracy",
    series: accuracySeries,
    yLow: 0,
    yHigh: 1,
    formatY: (value) => `${Math.round(value * 100)}%`,
    xOf,
    xTicks,
  });

  renderLegend(legend, [elboSeries, ...accuracySeries]);

  const xAxis = element("g", { class: "axis" });
  for (const tick of xTicks) {
    xAxis.append(element("text", { x: xOf(tick), y: accuracyBox.bottom + 17, "text-anchor": "middle" }, String(tick)));
  }
  xAxis.append(element("text", { x: right, y: height - 2, "text-anchor": "end" }, "epoch"));
  svg.append(xAxis);

  const last = history[history.length - 1];
  svg.setAttribute("aria-label", last
    ? `Learning curves for ${history.length} of ${totalEpochs} epochs; latest ELBO ${last.elbo.toFixed(2)}, ` +
      `labelled accuracy ${(last.labelled_accuracy * 100).toFixed(1)}%` +
      (Number.isFinite(last.test_accuracy) ? `, test accuracy ${(last.test_accuracy * 100).toFixed(1)}%` : "")
    : "No epoch finished yet");
}

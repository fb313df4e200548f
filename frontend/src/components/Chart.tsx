// A small line chart drawn as inline SVG (no chart library: a few hundred bytes do the job): one line per
// series over rounds, a point per value, a legend, and the same numbers as a table for screen readers.
// Missing values (null) leave a gap. The SVG scales with its box, so it fits 360 px.
import type { Series } from "../lib/training";

const WIDTH = 400;
const HEIGHT = 210;
const PAD = { left: 42, right: 12, top: 12, bottom: 30 };
// Colour-blind-safe (Okabe-Ito), dark enough on white for lines and points.
export const CHART_COLOURS = ["#0b5cad", "#c75a00", "#1d6b35", "#a3261b", "#6a3d9a", "#4d5b6b"];

export type ChartProps = {
  id: string;
  title: string;
  series: Series[];
  /** The y range; by default from the values (padded), or [0, 1] when they all lie in it. */
  domain?: [number, number];
  xLabel?: string;
};

function extent(series: Series[], domain?: [number, number]): [number, number] {
  if (domain) return domain;
  const values = series.flatMap((s) => s.points.map((p) => p.y)).filter((y): y is number => y !== null);
  if (!values.length) return [0, 1];
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (low === high) {
    low -= 0.5;
    high += 0.5;
  }
  const pad = (high - low) * 0.1;
  return [low - pad, high + pad];
}

/** Runs of consecutive points with values: a null breaks the line. */
function segments(points: { px: number; py: number | null }[]): string[] {
  const runs: string[] = [];
  let current: string[] = [];
  for (const point of points) {
    if (point.py === null) {
      if (current.length) runs.push(current.join(" "));
      current = [];
    } else current.push(`${point.px.toFixed(1)},${point.py.toFixed(1)}`);
  }
  if (current.length) runs.push(current.join(" "));
  return runs;
}

export function LineChart({ id, title, series, domain, xLabel = "Round" }: ChartProps) {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const [low, high] = extent(series, domain);
  const xMin = xs[0] ?? 0;
  const xMax = xs[xs.length - 1] ?? 1;
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const px = (x: number) => PAD.left + (xMax === xMin ? plotW / 2 : ((x - xMin) / (xMax - xMin)) * plotW);
  const py = (y: number) => PAD.top + plotH - ((y - low) / (high - low)) * plotH;
  const ticks = [low, (low + high) / 2, high];
  const count = series[0]?.points.length ?? 0;
  return (
    // Set through the DOM (not an HTML style attribute), which the portal's CSP allows.
    <figure className="chart" data-testid={`chart-${id}`} style={{ maxWidth: "30rem", margin: "0 0 1.5rem" }}>
      <figcaption>
        <strong>{title}</strong> <span className="hint">per round</span>
      </figcaption>
      <svg
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        width="100%"
        role="img"
        aria-label={`${title} over ${count} round${count === 1 ? "" : "s"}`}
        preserveAspectRatio="xMidYMid meet"
      >
        <g fontSize="12" fill="#4d5b6b">
          {ticks.map((tick) => (
            <g key={tick}>
              <line x1={PAD.left} x2={WIDTH - PAD.right} y1={py(tick)} y2={py(tick)} stroke="#c9d3de" strokeWidth="1" />
              <text x={PAD.left - 6} y={py(tick) + 4} textAnchor="end">
                {tick.toFixed(2)}
              </text>
            </g>
          ))}
          {xs.map((x) => (
            <text key={x} x={px(x)} y={HEIGHT - PAD.bottom + 16} textAnchor="middle">
              {x}
            </text>
          ))}
          <text x={PAD.left + plotW / 2} y={HEIGHT - 2} textAnchor="middle">
            {xLabel}
          </text>
        </g>
        {series.map((s, index) => {
          const colour = CHART_COLOURS[index % CHART_COLOURS.length];
          const placed = s.points.map((p) => ({ px: px(p.x), py: p.y === null ? null : py(p.y), point: p }));
          return (
            <g key={s.key} data-series={s.key} stroke={colour} fill={colour}>
              {segments(placed).map((run) => (
                <polyline key={run} points={run} fill="none" strokeWidth="2" strokeDasharray={index ? "5 3" : undefined} />
              ))}
              {placed.map(({ px: cx, py: cy, point }) =>
                cy === null ? null : (
                  <circle key={point.x} cx={cx} cy={cy} r="3.5" data-point={point.x}>
                    <title>{`${s.label}, round ${point.x}: ${(point.y ?? 0).toFixed(3)}`}</title>
                  </circle>
                ),
              )}
            </g>
          );
        })}
      </svg>
      <p className="hint chart-legend" aria-hidden="true">
        {series.map((s, index) => (
          <span key={s.key}>
            <svg width="18" height="10" aria-hidden="true">
              <line
                x1="0"
                x2="18"
                y1="5"
                y2="5"
                stroke={CHART_COLOURS[index % CHART_COLOURS.length]}
                strokeWidth="2"
                strokeDasharray={index ? "5 3" : undefined}
              />
            </svg>{" "}
            {s.label}{" "}
          </span>
        ))}
      </p>
      {/* In a clipping box: a table is never narrower than its content, so hidden alone it would widen the page. */}
      <div className="visually-hidden">
        <table>
          <caption>{title} per round</caption>
          <thead>
            <tr>
              <th scope="col">{xLabel}</th>
              {series.map((s) => (
                <th scope="col" key={s.key}>
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {xs.map((x) => (
              <tr key={x}>
                <th scope="row">{x}</th>
                {series.map((s) => {
                  const y = s.points.find((p) => p.x === x)?.y ?? null;
                  return <td key={s.key}>{y === null ? "no value" : y.toFixed(3)}</td>;
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </figure>
  );
}

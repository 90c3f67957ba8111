/**
 * Line charts for the page, over uPlot: one per `[data-chart]` box, sized to it, redrawn with
 * `setData` (uPlot keeps its canvas and scales), rebuilt only when its series change (a new API
 * version or node appears).
 *
 *     const chart = lineChart(box)
 *     chart.draw(["p50", "p99"], [xs, p50s, p99s])
 */
import uPlot from "uplot";

export type Columns = [number[], ...(number | null)[][]];

export interface LineChart {
  draw(labels: readonly string[], data: Columns): void;
  resize(): void;
}

const COLORS = ["#2f6fdf", "#e0533d", "#1b9e77", "#b04fc4", "#d49a00", "#5b6475", "#0f8fa8", "#c2185b"];
const HEIGHT = 180;

export function lineChart(box: HTMLElement): LineChart {
  let plot: uPlot | undefined;
  let shown = "";
  const width = () => Math.max(200, box.clientWidth - 16);

  return {
    draw(labels, data) {
      const key = labels.join("\u0000");
      if (plot === undefined || key !== shown) {
        plot?.destroy();
        shown = key;
        plot = new uPlot(
          {
            width: width(),
            height: HEIGHT,
            legend: { live: false },
            cursor: { drag: { x: false, y: false } },
            scales: { y: { range: (_u, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
            series: [
              {},
              ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length]!, width: 1.5, spanGaps: false })),
            ],
          },
          data,
          box,
        );
        return;
      }
      plot.setData(data);
    },
    resize() {
      plot?.setSize({ width: width(), height: HEIGHT });
    },
  };
}

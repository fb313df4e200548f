import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { LineChart } from "./Chart";

describe("the line chart", () => {
  it("draws a point per value, leaves gaps for missing ones and says the numbers in a table", () => {
    const { container } = render(
      <LineChart
        id="f1"
        title="F1"
        domain={[0, 1]}
        series={[
          { key: "test", label: "Test set", points: [{ x: 1, y: 0.5 }, { x: 2, y: 0.75 }, { x: 3, y: 0.9 }] },
          { key: "general", label: "general (validation)", points: [{ x: 1, y: 0.4 }, { x: 2, y: null }, { x: 3, y: 0.8 }] },
        ]}
      />,
    );
    expect(screen.getByRole("img", { name: "F1 over 3 rounds" })).toBeInTheDocument();
    expect(container.querySelectorAll("[data-series='test'] circle")).toHaveLength(3);
    expect(container.querySelectorAll("[data-series='general'] circle")).toHaveLength(2);
    expect(container.querySelectorAll("[data-series='general'] polyline")).toHaveLength(2); // broken by the gap
    // y = 0.9 of [0, 1] sits 90% of the way up the plot (top 12, height 210 - 12 - 30)
    const top = container.querySelector("[data-series='test'] circle[data-point='3']");
    expect(Number(top?.getAttribute("cy"))).toBeCloseTo(12 + 168 * 0.1, 1);
    expect(screen.getByRole("row", { name: /^2 / })).toHaveTextContent("0.750no value");
  });
});

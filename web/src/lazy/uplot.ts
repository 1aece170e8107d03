// A chunk of its own (web/build.mjs splits at import()): uPlot and its CSS, which only the charts
// need (charts.ts loads it when a page with charts opens). The CSS comes as text and lazy.ts adds
// it to the page once.
import css from "uplot/dist/uPlot.min.css" with { type: "text" };

export { default as uPlot } from "uplot";
export { css };

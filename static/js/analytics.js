// Analytics pages: draw the plotly charts the server built, open heatmap cells, show a
// loading state while a new query runs (every filter change reloads the page).
(function () {
  "use strict";
  const overlay = document.querySelector(".loading-overlay");
  function showLoading() { if (overlay) overlay.hidden = false; }
  document.querySelectorAll("form[data-loading]").forEach((form) => {
    form.addEventListener("submit", () => {
      // keep URLs short and shareable: drop empty fields
      form.querySelectorAll("input, select").forEach((el) => { if (!el.value) el.disabled = true; });
      showLoading();
    });
  });
  document.querySelectorAll(".subnav a, .pagination a, table.data a").forEach((a) => {
    a.addEventListener("click", (e) => { if (!e.metaKey && !e.ctrlKey) showLoading(); });
  });
  window.addEventListener("pageshow", () => { if (overlay) overlay.hidden = true; });

  const data = document.getElementById("analytics-charts");
  if (!data || typeof Plotly === "undefined") return;
  for (const chart of JSON.parse(data.textContent)) {
    const el = document.getElementById(chart.id);
    if (!el) continue;
    Plotly.newPlot(el, chart.figure.data, chart.figure.layout, { responsive: true, displaylogo: false });
    if (chart.clickable) {
      el.on("plotly_click", (ev) => {
        const point = ev.points && ev.points[0];
        const url = point && point.customdata && point.customdata[1];
        if (url) { showLoading(); window.location.href = url; }
      });
    }
  }
})();

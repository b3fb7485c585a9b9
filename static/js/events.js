// Events page: draw the server-built plotly figure of counts per event name over time.
(function () {
  const holder = document.getElementById("event-counts");
  const data = document.getElementById("event-counts-figure");
  if (!holder || !data || !window.Plotly) return;
  const figure = JSON.parse(data.textContent);
  Plotly.newPlot(holder, figure.data, figure.layout, { responsive: true, displaylogo: false });
})();
